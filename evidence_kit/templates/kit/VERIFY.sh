#!/usr/bin/env bash
# Re-check an evidence-kit bundle with stock tools only: sha256sum, openssl, and (to open
# the container) age and 7-Zip (7zz). README.txt, beside this script, explains each step.
#
#   ./VERIFY.sh [CONTAINER [IDENTITY]]
#
# CONTAINER  the bundle's container; default: the file named in container.sha256, in the
#            folder that holds this kit's folder. An empty argument means the default.
# IDENTITY   an age identity file that opens one of the container's key slots; with it,
#            every member of the container is decrypted and its MAC checked.
#
# Environment: TSA_CA=FILE  PEM root certificate(s) of the timestamp authority, instead of
#                           the kit's tsa-roots.pem
#              ALLOW_UNSIGNED=1  unsigned events and an unsigned seal do not count as
#                           "not checked"
#
# One line per check: OK, FAILED or NOT CHECKED. Exit status: 0 every check holds;
# 1 a check failed; 2 cannot run (bad arguments, a missing tool or container);
# 3 nothing failed, but something could not be checked.
#
# The script holds no value from the bundle: everything it checks is read from the files
# of this kit, the container and its custody log. Nothing read is ever run as code.

set -u
export LC_ALL=C
umask 077

usage() {
    printf 'usage: %s [CONTAINER [IDENTITY]]\n' "$0" >&2
    printf 'See README.txt in the same folder.\n' >&2
    exit 2
}

case "${1-}" in
    -h | --help) usage ;;
esac
[ "$#" -le 2 ] || usage

shown() { printf '%s' "$1" | tr '\000-\037\177' '?'; } # no control characters on the terminal

cannot_run() {
    printf 'cannot run: %s\n' "$(shown "$*")" >&2
    exit 2
}

for tool in sha256sum openssl base64 sed grep cmp split tr od wc head tail cut mktemp; do
    command -v "$tool" >/dev/null 2>&1 || cannot_run "'$tool' is not installed"
done

KIT=$(cd -- "$(dirname -- "$0")" && pwd -P) || cannot_run "cannot find the kit's folder"

TMP=$(mktemp -d) || cannot_run "cannot make a temporary folder"
trap 'rm -rf -- "$TMP"' EXIT
trap 'exit 130' INT TERM HUP

FAILED=0
UNCHECKED=0
ok() { printf 'OK           %s\n' "$*"; }
failed() {
    printf 'FAILED       %s\n' "$*"
    FAILED=$((FAILED + 1))
}
unchecked() {
    printf 'NOT CHECKED  %s\n' "$*"
    UNCHECKED=$((UNCHECKED + 1))
}
note() { printf '             %s\n' "$*"; }

absolute() { # a path other tools cannot take for an option or a list file
    case "$1" in
        /*) printf '%s' "$1" ;;
        *) printf '%s/%s' "$PWD" "$1" ;;
    esac
}

sha256_of() { sha256sum <"$1" | cut -c 1-64; }

# The value of the one "KEY":"VALUE" in FILE whose VALUE is made of CHARS (a bracket
# expression body); empty unless the key occurs exactly once. In RFC 8785 JSON a quote
# inside a string is always escaped, so "KEY": matches the key itself, never text.
string_field() {
    local matches
    matches=$(grep -o "\"$2\":\"[$3]*\"" "$1") || return 1
    [ "$(printf '%s\n' "$matches" | wc -l)" -eq 1 ] || return 1
    matches=${matches#*\":\"}
    printf '%s' "${matches%\"}"
}

number_field() { # "KEY":DIGITS
    local matches
    matches=$(grep -o "\"$2\":[0-9]*" "$1") || return 1
    [ "$(printf '%s\n' "$matches" | wc -l)" -eq 1 ] || return 1
    printf '%s' "${matches#*:}"
}

is_hex64() { [[ $1 =~ ^[0-9a-f]{64}$ ]]; }

fingerprint_of() { # SHA-256 of a public key's DER SubjectPublicKeyInfo
    openssl pkey -pubin -in "$1" -outform DER 2>/dev/null | sha256sum | cut -c 1-64
}

# --- the kit's own files ---------------------------------------------------------------

for name in container.sha256 custody.jsonl manifest.bin; do
    [ -f "$KIT/$name" ] || cannot_run "$name is missing: $KIT is not a complete kit"
done

LOG="$KIT/custody.jsonl"
recorded=$(head -n 1 -- "$KIT/container.sha256")
escaped=0
case "$recorded" in
    \\*)
        escaped=1
        recorded=${recorded#\\}
        ;;
esac
CONTAINER_SHA256=${recorded:0:64}
is_hex64 "$CONTAINER_SHA256" || cannot_run "container.sha256 does not start with a SHA-256"

# --- the container ---------------------------------------------------------------------

CONTAINER=${1-}
if [ -z "$CONTAINER" ]; then
    [ "$escaped" -eq 0 ] || cannot_run "give the container's path: ./VERIFY.sh CONTAINER"
    CONTAINER="$(dirname -- "$KIT")/${recorded:66}"
fi
CONTAINER=$(absolute "$CONTAINER")
[ -f "$CONTAINER" ] || cannot_run "no container at $CONTAINER: give its path: ./VERIFY.sh CONTAINER"
IDENTITY=${2-}
if [ -n "$IDENTITY" ]; then
    IDENTITY=$(absolute "$IDENTITY")
    [ -f "$IDENTITY" ] && [ -r "$IDENTITY" ] || cannot_run "cannot read the identity file $IDENTITY"
fi

printf 'Checking %s\n' "$(shown "$CONTAINER")"
printf '    with the kit in %s\n\n' "$(shown "$KIT")"

measured=$(sha256_of "$CONTAINER")
if [ "$measured" = "$CONTAINER_SHA256" ]; then
    ok "container: SHA-256 $measured, as in container.sha256"
else
    failed "container: SHA-256 is $measured, container.sha256 says $CONTAINER_SHA256"
fi

# --- the custody log: one file per line ------------------------------------------------

if [ ! -s "$LOG" ]; then
    failed "custody: custody.jsonl is empty"
    EVENTS=0
else
    if [ "$(tail -c 1 -- "$LOG" | od -An -tx1 | tr -d ' \n')" != "0a" ]; then
        failed "custody: the last line of custody.jsonl is incomplete (no newline)"
    fi
    split -l 1 -a 6 -d -- "$LOG" "$TMP/line." || cannot_run "cannot split custody.jsonl"
    EVENTS=$(wc -l <"$LOG")
fi

line_file() { printf '%s/line.%06d' "$TMP" "$1"; }
event_bytes() { # event N's line without its newline
    tr -d '\n' <"$(line_file "$1")" >"$TMP/event.$1" && printf '%s' "$TMP/event.$1"
}

# The log beside the container must begin with the kit's copy, byte for byte; custody goes
# on, so events after it are allowed (this kit does not cover them).
case "${CONTAINER,,}" in
    *.zip) LIVE_LOG="${CONTAINER%.*}.custody.jsonl" ;;
    *) LIVE_LOG="$CONTAINER.custody.jsonl" ;;
esac
if [ -f "$LIVE_LOG" ]; then
    kit_size=$(wc -c <"$LOG")
    live_size=$(wc -c <"$LIVE_LOG")
    if [ "$live_size" -ge "$kit_size" ] && cmp -s -n "$kit_size" -- "$LOG" "$LIVE_LOG"; then
        later=$(($(wc -l <"$LIVE_LOG") - EVENTS))
        ok "custody: the log beside the container begins with the kit's $EVENTS events"
        if [ "$later" -gt 0 ] || [ "$live_size" -gt "$kit_size" ]; then
            note "it has $later later event(s), written after this kit was made:"
            note "this kit does not check them (evidence-kit verify does, or a new kit)"
        fi
    else
        failed "custody: the log beside the container differs from the kit's custody.jsonl"
    fi
else
    note "no custody log beside the container ($(shown "$LIVE_LOG")): checking the kit's copy"
fi

# --- every event: number, bundle, link, container, signature, token --------------------

if [ -n "${TSA_CA-}" ]; then
    ROOTS=$(absolute "$TSA_CA")
    [ -f "$ROOTS" ] || cannot_run "TSA_CA=$TSA_CA is not a file"
elif [ -f "$KIT/tsa-roots.pem" ]; then
    ROOTS="$KIT/tsa-roots.pem"
else
    ROOTS=""
fi

# Each check names its event as "event N (ACTION)" in SUBJECT, set by the loop below.
SUBJECT=""

check_signature() { # N EVENT: signed-event-NNNN.{bin,sig,pub.pem} against event N
    local seq=$1 event=$2 name label measured recorded actor value
    label=$(printf 'signed-event-%04d' "$seq")
    name="$KIT/$label"
    for ext in bin sig pub.pem; do
        if [ ! -f "$name.$ext" ]; then
            failed "$SUBJECT: $label.$ext is missing from the kit"
            return
        fi
    done
    sed -E 's/,"signature":\{[^}]*\}//' "$event" >"$TMP/signed.$seq"
    if ! cmp -s -- "$TMP/signed.$seq" "$name.bin"; then
        failed "$SUBJECT: $label.bin is not the event's line without its signature"
        return
    fi
    if ! openssl pkeyutl -verify -pubin -inkey "$name.pub.pem" -rawin -in "$name.bin" \
        -sigfile "$name.sig" >/dev/null 2>&1; then
        failed "$SUBJECT: the signature does not verify ($label.sig, $label.pub.pem)"
        return
    fi
    measured=$(fingerprint_of "$name.pub.pem")
    recorded=$(string_field "$event" fingerprint '0-9a-f') || recorded=""
    actor=$(string_field "$event" actor_key_fingerprint '0-9a-f') || actor=""
    if ! is_hex64 "$recorded" || [ "$measured" != "$recorded" ] || [ "$actor" != "$recorded" ]
    then
        failed "$SUBJECT: $label.pub.pem is not the key the event names"
        return
    fi
    value=$(string_field "$event" value_b64 'A-Za-z0-9+/=') || value=""
    if ! printf '%s' "$value" | base64 -d 2>/dev/null | cmp -s - "$name.sig"; then
        failed "$SUBJECT: $label.sig is not the signature in the log"
        return
    fi
    ok "$SUBJECT: signature valid, by key $measured"
}

check_token() { # N EVENT: timestamp-NNNN.{bin,tsr,tsq} against event N
    local seq=$1 event=$2 name label stamped digest response request against input said time
    label=$(printf 'timestamp-%04d' "$seq")
    name="$KIT/$label"
    for ext in bin tsr tsq; do
        if [ ! -f "$name.$ext" ]; then
            failed "$SUBJECT: $label.$ext is missing from the kit"
            return
        fi
    done
    stamped=$(number_field "$event" stamped_seq) || stamped=""
    if ! [[ $stamped =~ ^[0-9]{1,9}$ ]] || [ "$stamped" -ge "$seq" ]; then
        failed "$SUBJECT: the token names no earlier event"
        return
    fi
    if ! cmp -s -- "$(event_bytes "$((10#$stamped))")" "$name.bin"; then
        failed "$SUBJECT: $label.bin is not the line of event $stamped"
        return
    fi
    digest=$(string_field "$event" stamped_line_sha256 '0-9a-f') || digest=""
    if [ "$(sha256_of "$name.bin")" != "$digest" ]; then
        failed "$SUBJECT: event $stamped is not the line the token was asked for"
        return
    fi
    response=$(string_field "$event" response_der_b64 'A-Za-z0-9+/=') || response=""
    request=$(string_field "$event" request_der_b64 'A-Za-z0-9+/=') || request=""
    if ! printf '%s' "$response" | base64 -d 2>/dev/null | cmp -s - "$name.tsr" ||
        ! printf '%s' "$request" | base64 -d 2>/dev/null | cmp -s - "$name.tsq"; then
        failed "$SUBJECT: $label.tsr or $label.tsq is not the token or request in the log"
        return
    fi
    if [ -z "$ROOTS" ]; then
        unchecked "$SUBJECT: timestamp token over event $stamped: no TSA root certificate" \
            "(give one: TSA_CA=root.pem ./VERIFY.sh ...)"
        return
    fi
    for against in -data -queryfile; do
        input="$name.bin"
        [ "$against" = "-queryfile" ] && input="$name.tsq"
        if ! said=$(openssl ts -verify -in "$name.tsr" "$against" "$input" -CAfile "$ROOTS" 2>&1) ||
            [[ $said != *"Verification: OK"* ]]; then
            failed "$SUBJECT: the timestamp token over event $stamped does not verify" \
                "(openssl ts -verify $against)"
            return
        fi
    done
    time=$(openssl ts -reply -in "$name.tsr" -text 2>/dev/null | sed -n 's/^Time stamp: //p')
    time=$(printf '%s' "${time%%$'\n'*}" | tr -cd 'A-Za-z0-9 :.+-')
    ok "$SUBJECT: timestamp token verifies: event $stamped existed by ${time:-?}"
}

FIRST_BUNDLE=""
links_ok=1
containers_ok=1
previous=""
for ((seq = 0; seq < EVENTS; seq++)); do
    event=$(event_bytes "$seq")
    action=$(string_field "$event" action 'a-z-') || action="?"
    SUBJECT="event $seq ($action)"
    recorded_seq=$(number_field "$event" seq) || recorded_seq=""
    if [ "$recorded_seq" != "$seq" ]; then
        failed "$SUBJECT: its number is '$recorded_seq', not $seq"
    fi
    bundle=$(string_field "$event" bundle_id '0-9a-f-') || bundle=""
    if [ "$seq" -eq 0 ]; then
        FIRST_BUNDLE=$bundle
        [ "$action" = "acquired" ] || failed "event 0: the first event is not 'acquired'"
        grep -q '"prev_event_sha256":null' "$event" || {
            failed "event 0: the first event links to another"
            links_ok=0
        }
    else
        prev=$(string_field "$event" prev_event_sha256 '0-9a-f') || prev=""
        if [ "$prev" != "$previous" ]; then
            failed "$SUBJECT: does not link to event $((seq - 1))" \
                "(its prev_event_sha256 is not the SHA-256 of that line)"
            links_ok=0
        fi
    fi
    if [ -z "$bundle" ] || [ "$bundle" != "$FIRST_BUNDLE" ]; then
        failed "$SUBJECT: names another bundle than event 0"
    fi
    container=$(string_field "$event" container_sha256 '0-9a-f') || container=""
    if [ "$container" != "$CONTAINER_SHA256" ]; then
        failed "$SUBJECT: recorded another container SHA-256 than" \
            "container.sha256: ${container:-?}"
        containers_ok=0
    fi
    if grep -q ',"signature":{' "$event"; then
        check_signature "$seq" "$event"
    elif grep -q ',"signature":null' "$event"; then
        if [ "${ALLOW_UNSIGNED-}" = 1 ]; then
            note "$SUBJECT is not signed (allowed: ALLOW_UNSIGNED=1)"
        else
            unchecked "$SUBJECT: not signed, so who wrote it cannot be checked"
        fi
    else
        failed "$SUBJECT: malformed (no signature field)"
    fi
    if grep -q ',"timestamp":{' "$event"; then
        check_token "$seq" "$event"
    fi
    previous=$(sha256_of "$event")
done
if [ "$EVENTS" -gt 0 ]; then
    [ "$links_ok" -eq 1 ] && ok "custody: $EVENTS events, each links to the one before it" \
        "(log head $previous)"
    [ "$containers_ok" -eq 1 ] &&
        ok "custody: every event recorded the SHA-256 in container.sha256"
fi

# --- the manifest and its seal ---------------------------------------------------------

MANIFEST="$KIT/manifest.bin"
MANIFEST_SHA256=$(sha256_of "$MANIFEST")
expected=""
[ "$EVENTS" -gt 0 ] && { expected=$(string_field "$(line_file 0)" manifest_sha256 '0-9a-f') ||
    expected=""; }
if [ "$MANIFEST_SHA256" = "$expected" ]; then
    ok "manifest: SHA-256 $MANIFEST_SHA256, as recorded in event 0"
else
    failed "manifest: manifest.bin's SHA-256 is not the one event 0 recorded"
fi
if [ -f "$KIT/manifest.sig" ] && [ -f "$KIT/manifest.pub.pem" ]; then
    signer=$(fingerprint_of "$KIT/manifest.pub.pem")
    if openssl pkeyutl -verify -pubin -inkey "$KIT/manifest.pub.pem" -rawin -in "$MANIFEST" \
        -sigfile "$KIT/manifest.sig" >/dev/null 2>&1; then
        ok "manifest: the seal's signature is valid, by key $signer"
    else
        failed "manifest: the seal's signature does not verify (manifest.sig)"
    fi
elif [ -f "$KIT/manifest.sig" ] || [ -f "$KIT/manifest.pub.pem" ]; then
    failed "manifest: manifest.sig or manifest.pub.pem is missing from the kit"
elif [ "${ALLOW_UNSIGNED-}" = 1 ]; then
    note "the manifest's seal is not signed (allowed: ALLOW_UNSIGNED=1)"
else
    unchecked "manifest: the seal is not signed, so who sealed it cannot be checked"
fi

# --- with an identity: open the container ----------------------------------------------

if [ -z "$IDENTITY" ]; then
    note "the container was not opened: give an age identity to check every member"
    note "(./VERIFY.sh CONTAINER IDENTITY)"
elif ! command -v age >/dev/null 2>&1 || ! command -v 7zz >/dev/null 2>&1; then
    unchecked "container contents: age and 7zz (7-Zip) are needed to open the container"
else
    # 7-Zip reads wildcards and list files (@) in archive names: it gets a fixed name.
    ZIP="$TMP/container.zip"
    ln -s -- "$CONTAINER" "$ZIP" || cannot_run "cannot link the container into $TMP"
    PASSWORD=""
    while IFS= read -r slot; do
        7zz e -so "$ZIP" "$slot" >"$TMP/slot.age" 2>/dev/null </dev/null || continue
        PASSWORD=$(age -d -i "$IDENTITY" "$TMP/slot.age" 2>/dev/null </dev/null) || PASSWORD=""
        [ -n "$PASSWORD" ] && break
    done < <(7zz l -slt "$ZIP" 2>/dev/null </dev/null |
        sed -n 's/^Path = //p' | grep -xE 'keyslots/[0-9]{2}-x25519\.age')
    if [ -z "$PASSWORD" ]; then
        failed "key slot: the identity opens no key slot of this container"
    elif ! [[ $PASSWORD =~ ^[0-9a-f]{64}$ ]]; then
        failed "key slot: what the key slot holds is not a bundle password"
    else
        ok "key slot: the identity opens a key slot"
        # 7-Zip reads the password from its standard input: it never appears in argv.
        printf '%s\n' "$PASSWORD" | 7zz t "$ZIP" >/dev/null 2>&1
        if [ "${PIPESTATUS[1]}" -eq 0 ]; then
            ok "container contents: 7-Zip decrypts every member and each MAC holds"
        else
            failed "container contents: 7-Zip's test of the container fails"
        fi
        printf '%s\n' "$PASSWORD" | 7zz e -so "$ZIP" manifest.json \
            >"$TMP/manifest.json" 2>/dev/null
        if cmp -s -- "$TMP/manifest.json" "$MANIFEST"; then
            ok "container contents: manifest.json is manifest.bin, byte for byte"
        else
            failed "container contents: manifest.json in the container is not manifest.bin"
        fi
        printf '%s\n' "$PASSWORD" | 7zz e -so "$ZIP" seal.json \
            >"$TMP/seal.json" 2>/dev/null
        sealed=$(string_field "$TMP/seal.json" manifest_sha256 '0-9a-f') || sealed=""
        seal_ok=1
        [ "$sealed" = "$MANIFEST_SHA256" ] || seal_ok=0
        if grep -q '"signature":null' "$TMP/seal.json"; then
            [ ! -f "$KIT/manifest.sig" ] || seal_ok=0
        else
            value=$(string_field "$TMP/seal.json" value_b64 'A-Za-z0-9+/=') || value=""
            printf '%s' "$value" | base64 -d 2>/dev/null | cmp -s - "$KIT/manifest.sig" ||
                seal_ok=0
        fi
        if [ "$seal_ok" -eq 1 ]; then
            ok "container contents: seal.json binds manifest.bin and holds manifest.sig"
        else
            failed "container contents: seal.json does not match manifest.bin and manifest.sig"
        fi
    fi
    PASSWORD=""
fi

# --- the verdict -----------------------------------------------------------------------

printf '\n'
if [ "$FAILED" -gt 0 ]; then
    printf 'RESULT: FAILED (%d check(s) failed, %d not checked)\n' "$FAILED" "$UNCHECKED"
    exit 1
fi
if [ "$UNCHECKED" -gt 0 ]; then
    printf 'RESULT: INCOMPLETE (nothing failed, but %d check(s) could not be made)\n' \
        "$UNCHECKED"
    exit 3
fi
printf 'RESULT: OK (every check holds)\n'
exit 0
