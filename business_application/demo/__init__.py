"""The demo: a seeded dependency map of a few thousand objects and a burst of alerts that tells stories.

``generate`` builds the map (pure Python, in the scenario format of docs/scenario-format.md, so the
replay tool reads it as well as NetBox), ``alerts`` builds the alert burst from the map's names,
and ``load`` (Django) writes the map into NetBox with bulk queries. ``make demo`` drives all three.
"""
