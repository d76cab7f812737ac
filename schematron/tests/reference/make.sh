#!/bin/sh
# Makes tests/reference/<kind>.jsonl: what Saxon-HE and SchXslt report for each mutant of the
# kind's sample, run as 1C:Medicine's SEMD validator runs them (the default namespace
# removed from the document, SchXslt 1.9.1's pipeline-for-svrl.xsl compiling the
# schematron, Saxon-HE running the result). Offline: it needs a JVM, Debian's
# `libsaxonhe-java` (Saxon-HE 9.9.1) and SchXslt 1.9.1 (MIT; its release archive, or the copy
# in 1C's repository under src/main/webapp/schxslt-1.9.1). Nothing here runs in the test
# suite, which reads the committed result.
#
#   SCHXSLT=/path/to/schxslt-1.9.1 schematron/tests/reference/make.sh 119 0 400
#
# One line per mutant: {"seed": n, "findings": [[kind, location, message], ...], "error": code}
# with kind "assert" (failed) or "report" (successful), the location with Q{...} removed, the
# message whitespace-normalised, and error the XPath error code when Saxon stopped.
set -eu
kind=$1 first=$2 count=$3
: "${SCHXSLT:?set SCHXSLT to SchXslt 1.9.1's directory}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
rules=${RULES:-$root/../shared/federal/semd-rules}
saxon=${SAXON:-/usr/share/java/Saxon-HE.jar}
sample=$(ls "$root"/../shared/samples/*-"$kind".xml)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run -q --manifest-path "$root/Cargo.toml" -p egisz-schematron --example mutants -- "$sample" "$first" "$count" "$work/in"
mkdir -p "$work/stripped" "$work/out"
for f in "$work"/in/*.xml; do
  sed -e 's/xmlns="urn:hl7-org:v3"//' -e "s/xmlns='urn:hl7-org:v3'//" "$f" > "$work/stripped/$(basename "$f")"
done
java -cp "$saxon" net.sf.saxon.Transform -s:"$rules/$kind/$kind.sch" \
  -xsl:"$SCHXSLT/2.0/pipeline-for-svrl.xsl" -o:"$work/rules.xsl"
# One JVM for the whole directory; a document Saxon stops on has no output, and the log
# names it ("While processing <file>: ...") after the error's code.
java -cp "$saxon" net.sf.saxon.Transform -s:"$work/stripped" -xsl:"$work/rules.xsl" -o:"$work/out" \
  > "$work/saxon.log" 2>&1 || true
python3 "$here/svrl.py" "$work/out" "$work/saxon.log" "$first" "$count" > "$here/$kind.jsonl"
echo "$here/$kind.jsonl: $(wc -l < "$here/$kind.jsonl") mutants"
