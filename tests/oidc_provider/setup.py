"""Create the provider's signing key, ShadowLab's client and users (run by the tests).

python -m tests.oidc_provider.setup <redirect-uri> <client-id> <client-secret>
python -m tests.oidc_provider.setup --user <name> <password> [<group> ...]
"""

import sys

import django


def main(argv: list[str]) -> None:
    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    if argv[0] == "--user":
        name, password, *groups = argv[1:]
        user, _ = User.objects.get_or_create(username=name, defaults={"email": f"{name}@idp.test"})
        user.set_password(password)
        user.save()
        user.groups.set([Group.objects.get_or_create(name=group)[0] for group in groups])
        return

    from oidc_provider.models import Client, ResponseType

    redirect_uri, client_id, client_secret = argv
    call_command("migrate", verbosity=0)
    call_command("creatersakey")
    client = Client.objects.create(
        name="ShadowLab",
        client_type="confidential",
        client_id=client_id,
        client_secret=client_secret,
        jwt_alg="RS256",
        redirect_uris=[redirect_uri],
        # ShadowLab's sign-in page, where the provider sends the browser after signing out.
        post_logout_redirect_uris=[redirect_uri.split("/oidc/")[0] + "/accounts/login/"],
        require_consent=True,
        reuse_consent=False,
        scope=["openid", "email", "profile", "groups"],
    )
    client.response_types.add(ResponseType.objects.get(value="code"))


if __name__ == "__main__":
    main(sys.argv[1:])
