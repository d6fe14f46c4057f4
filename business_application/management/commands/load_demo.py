"""Load the demo dependency map into NetBox.

    netbox load_demo [--seed N] [--dry-run]

Generates the map of ``business_application.demo.generate`` for the seed (default 7) and writes
it with bulk queries in one transaction. Idempotent: when the demo map of this seed is already
loaded it only says so; a map of another seed is an error (reset the database to change seeds).
"""

from django.core.management.base import BaseCommand, CommandError

from business_application.demo.generate import DEFAULT_SEED, generate, summary
from business_application.demo.load import DemoLoadError, load_demo_map, loaded_seed


class Command(BaseCommand):
    help = 'Load the demo dependency map (a few thousand objects) into NetBox, once.'

    def add_arguments(self, parser):
        parser.add_argument('--seed', type=int, default=DEFAULT_SEED, help=f'random seed (default {DEFAULT_SEED})')
        parser.add_argument('--dry-run', action='store_true', help='print what the map holds and load nothing')

    def handle(self, *args, **options):
        seed = options['seed']
        demo_map = generate(seed)
        if options['dry_run']:
            self._summary(demo_map)
            return
        present = loaded_seed()
        if present == seed:
            self.stdout.write(f'The demo map of seed {seed} is already loaded; nothing to do.')
            return
        if present is not None:
            raise CommandError(
                f'The demo map of seed {present} is loaded, not that of seed {seed}: leave DEMO_SEED unset '
                f'(make demo and make start then use the loaded seed) or set DEMO_SEED={present} '
                f'(--seed {present} for netbox load_demo), or empty the database first (scripts/migrate.sh --reset)'
            )
        try:
            counts = load_demo_map(demo_map)
        except DemoLoadError as error:
            raise CommandError(str(error)) from None
        seconds = counts.pop('seconds')
        total = sum(counts.values())
        self.stdout.write(self.style.SUCCESS(f'Loaded the demo map of seed {seed}: {total} objects in {seconds} s'))
        self.stdout.write('  ' + ', '.join(f'{count} {name}' for name, count in counts.items()))

    def _summary(self, demo_map):
        for name, count in summary(demo_map).items():
            self.stdout.write(f'{name:>22}: {count}')
