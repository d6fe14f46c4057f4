"""The replay tool names a scenario's roles by the slug NetBox gives them on import, without Django itself:
checked here against Django's slugify (the property tests stay free of Django)."""

from django.utils.text import slugify
from hypothesis import given
from hypothesis import strategies as st

from business_application.correlation.replay import role_slug


@given(st.text(max_size=120))
def test_a_role_slug_is_the_one_netbox_gives_on_import(name):
    assert role_slug(name) == (slugify(name)[:100] or 'x')
