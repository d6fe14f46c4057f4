"""Times a person types into a form: PostgreSQL takes zone offsets up to +/-15:59, Python parses up to 23:59."""

from django import forms

from ..filtersets import postgres_offset

__all__ = ('OffsetCheckedMixin',)


class OffsetCheckedMixin:
    """Give every time field of the form (declared or from the model) the check the REST filters have, so a time
    with an offset PostgreSQL refuses is a form error naming the field instead of a database error (a 500)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, forms.DateTimeField) and postgres_offset not in field.validators:
                field.validators.append(postgres_offset)
