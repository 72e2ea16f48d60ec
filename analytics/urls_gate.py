"""Gate pages under /rollout/: a model version's gate, a queue's gate policy."""

from django.urls import path

from analytics import views_gate, views_policy
from shadowlab import converters  # noqa: F401  (registers the modelkey converter)

app_name = "gate"

urlpatterns = [
    path("<slug:slug>/gate/<modelkey:key>/", views_gate.gate_page, name="page"),
    path("<slug:slug>/gate/<modelkey:key>/evaluate", views_gate.gate_evaluate, name="evaluate"),
    path("<slug:slug>/gate/<modelkey:key>/request", views_gate.promotion_request, name="request"),
    path("<slug:slug>/policy/", views_policy.gate_policy_page, name="policy"),
]
