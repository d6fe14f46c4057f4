"""The receivers' OpenAPI description builds with NetBox's schema class (for clients and fuzzers)."""

import warnings

from django.test import SimpleTestCase, override_settings
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator


@override_settings(ROOT_URLCONF='tests.receivers.urls')
class SchemaTest(SimpleTestCase):
    def test_schema_lists_the_receivers_without_warnings(self):
        from tests.receivers.urls import urlpatterns

        GENERATOR_STATS.reset()
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            schema = SchemaGenerator(patterns=urlpatterns[:1]).get_schema(request=None, public=True)
        self.assertFalse(GENERATOR_STATS, 'drf-spectacular reported warnings or errors')
        paths = schema['paths']
        for receiver in ('alertmanager', 'grafana', 'pagerduty', 'generic'):
            operation = paths[f'/api/plugins/business-application/alerts/{receiver}/']
            self.assertEqual(set(operation) & {'post', 'put', 'get'}, {'post'})
            self.assertIn('source', [p['name'] for p in operation['post']['parameters']])
            self.assertIn({'tokenAuth': []}, operation['post']['security'])
            self.assertEqual(set(operation['post']['requestBody']['content']), {'application/json'})
        self.assertIn('202', paths['/api/plugins/business-application/alerts/pagerduty/']['post']['responses'])
