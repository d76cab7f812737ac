"""SVRL (SchXslt's output) to the reference lines read by tests/reference.rs; see make.sh."""
import json, os, re, sys
import xml.etree.ElementTree as ET

SVRL = "{http://purl.oclc.org/dsdl/svrl}"
out_dir, log, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# The error code of each document Saxon stopped on: the first code in the block of the log
# that ends with "While processing <file>:".
errors, block = {}, []
for text in open(log, encoding="utf-8"):
    m = re.match(r"While processing (\S+?)\.xml:", text)
    if m:
        codes = re.findall(r"\b([A-Z]{4}\d{4})\b", "".join(block) + text)
        errors[m.group(1)] = codes[0] if codes else "unknown"
        block = []
    else:
        block.append(text)
for seed in range(first, first + count):
    name = f"{seed:05}"
    base = os.path.join(out_dir, name + ".xml")
    line = {"seed": seed, "findings": [], "error": None}
    if name not in errors:
        for el in ET.parse(base).getroot().iter():
            if el.tag in (SVRL + "failed-assert", SVRL + "successful-report"):
                text = el.find(SVRL + "text")
                message = " ".join((text.text or "").split()) if text is not None else ""
                location = re.sub(r"Q\{[^}]*\}", "", el.get("location"))
                kind = "assert" if el.tag.endswith("failed-assert") else "report"
                line["findings"].append([kind, location, message])
    else:
        line["error"] = errors[name]
    print(json.dumps(line, ensure_ascii=False))
