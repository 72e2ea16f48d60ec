"""The gate policy page: admins edit every field into a new version, ml_leads read it."""

from __future__ import annotations

import pytest

from analytics.gate.policy import FIELD_RULES, gate_policy_current, gate_policy_document
from analytics.models import GatePolicy
from deployments.models import AuditEvent

pytestmark = pytest.mark.django_db

PAGE = "/rollout/digits/policy/"


def _form(policy: GatePolicy, **changes: object) -> dict[str, object]:
    """Return the form as the page fills it in, with these fields changed."""
    document = gate_policy_document(policy)
    form: dict[str, object] = {"version": policy.version}
    for name in FIELD_RULES:
        value = changes.get(name, document[name])
        if isinstance(value, bool):
            if value:
                form[name] = "on"
        elif isinstance(value, list):
            form[name] = ", ".join(str(step) for step in value)
        else:
            form[name] = "" if value is None else value
    return form


def test_an_admin_sees_every_field_filled_in_with_the_current_values(queue, client_for, admin_user):
    html = client_for(admin_user).get(PAGE).content.decode()

    for name in FIELD_RULES:
        assert f'name="{name}"' in html, name
    assert 'name="agreement_floor" value="0.9"' in html
    assert 'name="version" value="1"' in html
    assert "Empty switches the criterion off." in html


def test_an_admin_edit_makes_a_version_with_its_changes_in_the_history(
    queue, client_for, admin_user
):
    client = client_for(admin_user)
    policy = gate_policy_current(queue=queue)

    response = client.post(PAGE, _form(policy, agreement_floor=0.88, psi_major=None))

    assert response.status_code == 302
    assert response["Location"] == PAGE
    current = gate_policy_current(queue=queue)
    assert (current.version, current.agreement_floor, current.psi_major) == (2, 0.88, None)
    assert current.created_by == admin_user
    assert AuditEvent.objects.filter(action="gate_policy.update").count() == 1
    html = client.get(PAGE).content.decode()
    assert "Saved the gate policy of Digits as version 2." in html
    assert "agreement_floor: 0.9 → 0.88<br>psi_major: 0.25 → off" in html
    assert "first version" in html


def test_saving_unchanged_values_makes_no_version(queue, client_for, admin_user):
    client = client_for(admin_user)
    client.post(PAGE, _form(gate_policy_current(queue=queue)))
    assert GatePolicy.objects.count() == 1
    assert "Nothing changed" in client.get(PAGE).content.decode()


def test_bad_values_are_a_400_with_each_error_next_to_its_field(queue, client_for, admin_user):
    policy = gate_policy_current(queue=queue)
    form = _form(policy, agreement_floor=1.5, window_days=0, noninferiority_margin="lots")
    form["confidence"] = ""

    response = client_for(admin_user).post(PAGE, form)

    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="agreement_floor-errors"><li>1.5 is not in [0, 1]</li>' in html
    assert 'id="window_days-errors"><li>0 is not in [1, 366]</li>' in html
    assert 'id="noninferiority_margin-errors"><li>Enter a number.</li>' in html
    assert 'id="confidence-errors"><li>This field is required.</li>' in html
    assert 'name="agreement_floor" value="1.5"' in html  # what was typed stays for correcting
    assert GatePolicy.objects.count() == 1
    assert not AuditEvent.objects.filter(action="gate_policy.update").exists()


def test_an_edit_made_on_an_older_version_is_a_409_and_keeps_the_values(
    queue, client_for, admin_user
):
    client = client_for(admin_user)
    first = gate_policy_current(queue=queue)
    client.post(PAGE, _form(first, window_days=14))

    response = client.post(PAGE, _form(first, window_days=7))

    assert response.status_code == 409
    html = response.content.decode()
    assert "Not saved: the policy was edited since version 1; it is now version 2" in html
    assert 'name="window_days" value="7"' in html
    assert 'name="version" value="2"' in html
    assert gate_policy_current(queue=queue).window_days == 14


def test_an_ml_lead_reads_the_policy_without_a_form_and_cannot_post(queue, client_for, ml_lead):
    client = client_for(ml_lead)
    html = client.get(PAGE).content.decode()

    assert '<form method="post" class="form-grid policy-form"' not in html
    assert (
        '<tr data-field="agreement_floor"><th scope="row">Agreement floor</th>'
        '<td class="num">0.9</td>'
    ) in html
    assert "Only an admin can edit the gate policy." in html
    assert client.post(PAGE, _form(gate_policy_current(queue=queue))).status_code == 403
    assert GatePolicy.objects.count() == 1


def test_an_unknown_queue_is_a_404(db, client_for, admin_user):
    assert client_for(admin_user).get("/rollout/nowhere/policy/").status_code == 404


def test_an_admin_writes_the_canary_steps_as_shares_separated_by_commas(
    queue, client_for, admin_user
):
    client = client_for(admin_user)
    policy = gate_policy_current(queue=queue)
    assert 'name="canary_steps" value="0.05, 0.25, 0.5, 1"' in client.get(PAGE).content.decode()

    response = client.post(PAGE, _form(policy, canary_steps="0.1, 0.5, 1", auto_advance=True))

    assert response.status_code == 302
    current = gate_policy_current(queue=queue)
    assert (current.canary_steps, current.auto_advance) == ([0.1, 0.5, 1.0], True)
    html = client.get(PAGE).content.decode()
    assert "canary_steps: 0.05, 0.25, 0.5, 1 → 0.1, 0.5, 1" in html


@pytest.mark.parametrize(
    ("steps", "message"),
    [("a lot", "shares separated by commas"), ("0.5, 0.25, 1", "each step must be larger")],
)
def test_canary_steps_that_are_not_a_ladder_are_refused_with_a_sentence(
    queue, client_for, admin_user, steps, message
):
    policy = gate_policy_current(queue=queue)
    response = client_for(admin_user).post(PAGE, _form(policy, canary_steps=steps))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert GatePolicy.objects.filter(queue=queue).count() == 1
