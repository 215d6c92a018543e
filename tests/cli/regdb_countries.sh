#!/usr/bin/env bash
# The Wi-Fi country table embedded in pibake (builder/spec/regdb_countries.cpp) against the
# regulatory database Debian's wireless-regdb package installs: the same package version must give
# exactly the same countries; a different version is a skip that says to regenerate the table.
# Then a build with an unknown country is refused with the located error.
source "$(dirname "$0")/lib.bash"

db=/lib/firmware/regulatory.db-upstream
[ -r "$db" ] || skip "wireless-regdb is not installed ($db)"
table=$PIBAKE_SOURCE_DIR/builder/spec/regdb_countries.cpp
installed=$(dpkg-query -W -f='${Version}' wireless-regdb 2>/dev/null) || skip "dpkg-query knows no wireless-regdb"
embedded=$(sed -n 's/^constexpr std::string_view kRegdbVersion = "\(.*\)";$/\1/p' "$table")
[ -n "$embedded" ] || fail "no kRegdbVersion in $table"
if [ "$installed" != "$embedded" ]; then
  skip "wireless-regdb $installed is installed, the table is from $embedded: regenerate it with" \
    "scripts/gen-regdb-countries.py $db $installed > builder/spec/regdb_countries.cpp"
fi
python3 "$PIBAKE_SOURCE_DIR/scripts/gen-regdb-countries.py" --list "$db" > from-db.txt
grep -o '"[A-Z][A-Z]"' "$table" | tr -d '"' > from-table.txt
[ "$(wc -l < from-db.txt)" -gt 150 ] || fail "only $(wc -l < from-db.txt) countries read from $db"
diff -u from-db.txt from-table.txt || fail "the embedded table differs from $db ($installed)"
python3 "$PIBAKE_SOURCE_DIR/scripts/gen-regdb-countries.py" "$db" "$installed" > regenerated.cpp
diff -u regenerated.cpp "$table" || fail "$table is not what the generator writes for $installed"
note "table matches wireless-regdb $installed ($(wc -l < from-db.txt) countries)"

# UK and XX in a spec: both refused, located, before anything is written.
cat > cluster.yaml <<'YAML'
network:
  uplink: {interface: wlan0, wifi: {ssid: home, password: correct horse, country: UK}}
YAML
chmod 0644 cluster.yaml
if pibake build --dry-run; then fail "a build with country UK was accepted"; fi
assert_contains err.log 'cluster.yaml:2:83: network.uplink.wifi.country: "UK" is not a country of the wireless regulatory database: did you mean "GB"'
sed -i 's/country: UK/country: GB/' cluster.yaml
pibake_ok build --dry-run
