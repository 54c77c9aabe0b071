#!/usr/bin/env bash
# ManPagesRenderCleanlyAndMatchTheBinaries: the generated man pages render
# with no groff or man warning, and name everything the built binaries have:
# every plantd-broker option and PLANTD_BROKER_* variable in plantd-broker(8),
# every configuration key in plantd-broker.yaml(5), every plantd-mdp
# subcommand in plantd-mdp(1) with each of its options, choices and exit
# statuses. The lists come from the binaries (--help, --print-keys), never
# from this script.
#
#   man_pages_test.sh MAN_DIR PLANTD_BROKER PLANTD_MDP
set -euo pipefail
man_dir="$1"
broker="$2"
mdp="$3"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# Rendered as a reader sees it, in plain ASCII (\- is then '-'), wide enough
# that no option is broken across lines.
render() {
  LC_ALL=C MANWIDTH=200 MAN_KEEP_STDERR=1 MAN_KEEP_FORMATTING= man --warnings=w -l "$1" \
    2>"$work/warnings" | col -bx
}

# Lines of a rendered page from the heading that starts with $2 (a section,
# ".SH", at column 0; or a subsection, ".SS", at column 3) to the next
# heading of the same or a higher level.
section() {
  awk -v head="$2" '
    BEGIN { level = (head ~ /^   /) ? 2 : 1; h = head; sub(/^ +/, "", h) }
    function heading_level(line) {
      if (line ~ /^[^ ]/) return 1
      if (line ~ /^   [^ ]/) return 2
      return 0
    }
    {
      l = heading_level($0)
      if (inside && l > 0 && l <= level) exit
      t = $0; sub(/^ +/, "", t)
      if (!inside && l == level && (t == h || index(t, h " ") == 1)) { inside = 1 }
      if (inside) print
    }' "$1"
}

# --long and -s options in a CLI11 --help text, one a line.
options_of() {
  grep -E '^ +-' | grep -oE '(^|[ ,])--?[A-Za-z0-9][A-Za-z0-9-]*' | sed 's/^[ ,]//' |
    grep -vxE -- '-h|--help' | sort -u
}

# Does the rendered text $1 contain option $2 as a word of its own?
has_option() {
  grep -qE -- "(^|[^A-Za-z0-9-])$2([^A-Za-z0-9-]|\$)" "$1"
}

pages=(plantd-broker.8 plantd-broker.yaml.5 plantd-mdp.1)
for page in "${pages[@]}"; do
  for file in "$man_dir/$page" "$man_dir/$page.gz"; do
    [ -s "$file" ] || { fail "$file is missing or empty"; continue; }
    render "$file" >"$work/$page.txt"
    if [ -s "$work/warnings" ]; then
      fail "$file renders with warnings:"; cat "$work/warnings" >&2
    fi
    [ -s "$work/$page.txt" ] || fail "$file renders to nothing"
  done
  if grep -n '@[A-Z_]*@' "$man_dir/$page"; then fail "$page has an unfilled @...@"; fi
  # Also groff itself, every warning on, in the UTF-8 device.
  if ! groff -man -Tutf8 -ww -z "$man_dir/$page" 2>"$work/groff"; then fail "groff failed on $page"; fi
  if [ -s "$work/groff" ]; then fail "groff warns on $page:"; cat "$work/groff" >&2; fi
done

# plantd-broker(8): every option of --help in OPTIONS, every variable in
# ENVIRONMENT.
"$broker" --help >"$work/broker-help"
section "$work/plantd-broker.8.txt" OPTIONS >"$work/broker-options"
section "$work/plantd-broker.8.txt" ENVIRONMENT >"$work/broker-environment"
n=0
while read -r option; do
  n=$((n + 1))
  has_option "$work/broker-options" "$option" || fail "plantd-broker(8) OPTIONS lacks $option"
done < <(options_of <"$work/broker-help")
[ "$n" -gt 40 ] || fail "only $n plantd-broker options found in --help"
m=0
while read -r variable; do
  m=$((m + 1))
  grep -qw -- "$variable" "$work/broker-environment" ||
    fail "plantd-broker(8) ENVIRONMENT lacks $variable"
done < <({ grep -oE 'PLANTD_BROKER_[A-Z0-9_]+' "$work/broker-help"; echo PLANTD_BROKER_CONFIG; } | sort -u)
[ "$m" -gt 40 ] || fail "only $m variables found in plantd-broker --help"
section "$work/plantd-broker.8.txt" "EXIT STATUS" >"$work/broker-exit"
for status in 0 1 2; do
  grep -qE "^ +$status( |\$)" "$work/broker-exit" ||
    fail "plantd-broker(8) EXIT STATUS lacks $status"
done

# plantd-broker.yaml(5): every key of the key table in KEYS.
"$broker" --print-keys summary | grep -oE '^\| `[^`]+`' | sed 's/^| `//; s/`$//' >"$work/keys"
section "$work/plantd-broker.yaml.5.txt" KEYS >"$work/yaml-keys"
k=0
while read -r key; do
  k=$((k + 1))
  grep -qF -- "$key" "$work/yaml-keys" || fail "plantd-broker.yaml(5) KEYS lacks $key"
done <"$work/keys"
[ "$k" -gt 40 ] || fail "only $k keys from --print-keys summary"

# plantd-mdp(1): each subcommand has a subsection under COMMANDS naming its
# options and choices (or, for the client options, COMMON OPTIONS names the
# subcommand); --version and the exit statuses --help lists are there too.
"$mdp" --help >"$work/mdp-help"
mdp_page="$work/plantd-mdp.1.txt"
section "$mdp_page" "COMMON OPTIONS" >"$work/mdp-common"
section "$mdp_page" OPTIONS >"$work/mdp-options"
has_option "$work/mdp-options" --version || fail "plantd-mdp(1) OPTIONS lacks --version"
subcommands=$(awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }' \
  "$work/mdp-help")
s=0
for sub in $subcommands; do
  s=$((s + 1))
  section "$mdp_page" "   $sub" >"$work/mdp-$sub"
  if [ ! -s "$work/mdp-$sub" ]; then fail "plantd-mdp(1) has no subsection for $sub"; continue; fi
  "$mdp" "$sub" --help >"$work/mdp-$sub-help"
  while read -r option; do
    if has_option "$work/mdp-$sub" "$option"; then continue; fi
    if has_option "$work/mdp-common" "$option" && grep -qw -- "$sub" "$work/mdp-common"; then continue; fi
    fail "plantd-mdp(1) documents no $option for $sub"
  done < <(options_of <"$work/mdp-$sub-help")
  # Choices, as CLI11 shows them: TEXT:{drain,status}
  for choice in $(grep -oE '\{[^}]*\}' "$work/mdp-$sub-help" | tr -d '{}' | tr ',' ' '); do
    grep -qw -- "$choice" "$work/mdp-$sub" || fail "plantd-mdp(1) $sub lacks its choice $choice"
  done
done
[ "$s" -ge 9 ] || fail "only $s plantd-mdp subcommands found in --help"
codes=$(grep -oE '[0-9] [a-z]' "$work/mdp-help" | cut -c1 | sort -u)
[ -n "$codes" ] || fail "no exit statuses in plantd-mdp --help"
section "$mdp_page" "EXIT STATUS" >"$work/mdp-exit"
for status in $codes; do
  grep -qE "^ +$status( |\$)" "$work/mdp-exit" ||
    fail "plantd-mdp(1) EXIT STATUS lacks $status"
done

if [ "$failures" -gt 0 ]; then
  echo "man pages: $failures problem(s)" >&2
  exit 1
fi
echo "man pages: ok ($n broker options, $m variables, $k keys, $s plantd-mdp subcommands)"
