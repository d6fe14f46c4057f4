"""The users and rules the receiver tests share: a sender's token, and a webhook event rule."""

from django.contrib.contenttypes.models import ContentType

from users.constants import TOKEN_PREFIX
from users.models import ObjectPermission, Token, User

#: Never called: nothing listens on the discard port, and no worker runs the queued jobs in these tests.
NEVER_CALLED = 'http://127.0.0.1:9/never-called'


def sender_authorization(username, constraints=None):
    """The Authorization header value of a new user who may view, add and change events and event sources
    (what a receiver's token needs), within ``constraints`` if given."""
    user = User.objects.create_user(username=username)
    permission = ObjectPermission.objects.create(
        name=f'{username} sends', actions=['view', 'add', 'change'], constraints=constraints
    )
    permission.object_types.add(
        ContentType.objects.get_by_natural_key('business_application', 'event'),
        ContentType.objects.get_by_natural_key('business_application', 'eventsource'),
    )
    permission.users.add(user)
    token = Token.objects.create(user=user, write_enabled=True)
    return f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'


def event_sender_header(username, actions_constraints, superuser=False, write_enabled=True, extra=()):
    """The Authorization header of a new user (a superuser if asked) holding, on events, one ObjectPermission per
    ``(actions, constraints)`` of ``actions_constraints``, and on event sources (and the ``extra`` models of this
    plugin) view, add and change."""
    if superuser:
        user = User.objects.create_superuser(username=username)
    else:
        user = User.objects.create_user(username=username)
    event_type = ContentType.objects.get_by_natural_key('business_application', 'event')
    source_type = ContentType.objects.get_by_natural_key('business_application', 'eventsource')
    for index, (actions, constraints) in enumerate(actions_constraints):
        permission = ObjectPermission.objects.create(
            name=f'{username}-{index}', actions=actions, constraints=constraints
        )
        permission.object_types.add(event_type)
        permission.users.add(user)
    permission = ObjectPermission.objects.create(name=f'{username}-sources', actions=['view', 'add', 'change'])
    permission.object_types.add(source_type)
    for model in extra:
        permission.object_types.add(ContentType.objects.get_by_natural_key('business_application', model))
    permission.users.add(user)
    token = Token.objects.create(user=user, write_enabled=write_enabled)
    return {'HTTP_AUTHORIZATION': f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'}


def webhook_rule(name, model, event_types, conditions=None):
    """An enabled event rule on ``model``'s object type whose action is a webhook that is never called."""
    from core.models import ObjectType
    from extras.models import EventRule, Webhook

    webhook = Webhook.objects.create(name=name, payload_url=NEVER_CALLED)
    rule = EventRule.objects.create(
        name=name,
        event_types=event_types,
        action_type='webhook',
        action_object_type=ContentType.objects.get_for_model(Webhook),
        action_object_id=webhook.pk,
        conditions=conditions,
    )
    rule.object_types.set([ObjectType.objects.get_for_model(model)])
    return rule
