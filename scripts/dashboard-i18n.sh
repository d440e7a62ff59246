#!/usr/bin/env bash
# Extracts the dashboard's translatable strings and merges new ones into the Spanish catalog
# (onsite_server/translations/es/LC_MESSAGES/messages.po). Translate the new empty msgstr
# entries by hand; the app compiles the catalog when it starts, and
# tests/onsite_server/dashboard/test_i18n.py fails while a string has no Spanish.
set -euo pipefail
cd "$(dirname "$0")/.."
pot=$(mktemp --suffix=.pot)
trap 'rm -f "$pot"' EXIT
.venv/bin/pybabel extract -F onsite_server/translations/babel.cfg -k _l -k lazy_gettext -k N_ \
  --no-location --omit-header -o "$pot" . >/dev/null
.venv/bin/pybabel update -i "$pot" -d onsite_server/translations -l es \
  --no-fuzzy-matching -w 100
