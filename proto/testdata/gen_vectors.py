#!/usr/bin/env python3
"""Build vectors.json from cases.json with the official protobuf runtime.

usage: gen_vectors.py CASES_JSON PB2_DIR OUT_JSON

PB2_DIR holds slotgate_pb2.py generated from proto/slotgate.proto (gen.sh
makes it with grpc_tools.protoc in a throwaway venv). Nothing here touches
protobuf-c: the frames are an independent encoding that the C unit test
(tests/unit/test_vectors.c) then checks the proxy and clients/c against.

Every case's "json" must already be canonical proto3 JSON (what
json_format.MessageToJson prints with default options); the generator fails
otherwise, so TypeScript, Go and Python parsers all read the same thing.

encode cases: frame = serialisation of json.
decode cases: the body is the serialisation of json, then
  - "unknown": [{"at": "<path>", "fields": [...]}] appends hand-built fields
    that the schema does not define to the message at <path> ("" = the top
    message, "response.results[1]" = a nested one);
  - "prefix": [...] puts hand-built fields before the top message's fields;
  - or "body_hex" gives the whole body by hand.
  The body is then decoded again and must read back as json. A field is
  {"field": N, "varint": V} | {"fixed64": V} | {"fixed32": V} |
  {"bytes_hex": "..."}, with N a number the target message does not use.
"canonical": true (decode cases) asserts the frame is exactly the
serialisation of json: a server produces these bytes. "canonical": false
marks a decode case whose bytes are the official runtime's serialisation but
that another conforming encoder writes differently (protobuf-c and map
entries holding 0); it is written out without the flag.
"""
import json
import sys

from google.protobuf import __version__ as pb_version
from google.protobuf import json_format

sys.path.insert(0, sys.argv[2])
import slotgate_pb2  # noqa: E402

TYPES = {"ClientMessage": slotgate_pb2.ClientMessage, "ServerMessage": slotgate_pb2.ServerMessage}


def fail(case, why):
    sys.exit("gen_vectors: case %s: %s" % (case.get("name", "?"), why))


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def unknown_bytes(case, desc, fields):
    """Encode hand-built fields; each must be unknown to message type desc."""
    out = b""
    for f in fields:
        num = f["field"]
        if num in desc.fields_by_number:
            fail(case, "field %d is defined in %s, not unknown" % (num, desc.full_name))
        if "varint" in f:
            out += varint(num << 3 | 0) + varint(int(f["varint"]))
        elif "fixed64" in f:
            out += varint(num << 3 | 1) + int(f["fixed64"]).to_bytes(8, "little")
        elif "fixed32" in f:
            out += varint(num << 3 | 5) + int(f["fixed32"]).to_bytes(4, "little")
        elif "bytes_hex" in f:
            data = bytes.fromhex(f["bytes_hex"])
            out += varint(num << 3 | 2) + varint(len(data)) + data
        else:
            fail(case, "unknown field without a value: %r" % f)
    return out


def navigate(msg, path):
    for part in [p for p in path.split(".") if p]:
        if part.endswith("]"):
            name, idx = part[:-1].split("[")
            msg = getattr(msg, name)[int(idx)]
        else:
            msg = getattr(msg, part)
    return msg


def to_json(msg):
    return json.loads(json_format.MessageToJson(msg))


def max_map_entries(msg):
    """Largest map in msg or any message below it (encode cases keep it <= 1)."""
    most = 0
    for fd, val in msg.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            most = max(most, len(val))
        elif fd.message_type is not None and fd.is_repeated:
            for sub in val:
                most = max(most, max_map_entries(sub))
        elif fd.message_type is not None:
            most = max(most, max_map_entries(val))
    return most


def build(case, kind):
    cls = TYPES.get(case.get("type"))
    if cls is None:
        fail(case, "type must be ClientMessage or ServerMessage")
    msg = json_format.Parse(json.dumps(case["json"]), cls())
    if to_json(msg) != case["json"]:
        fail(case, "json is not canonical; MessageToJson gives %s" % json.dumps(to_json(msg)))
    canonical = msg.SerializeToString(deterministic=True)
    if kind == "encode" or case.get("canonical"):
        if max_map_entries(msg) > 1:
            fail(case, "a map with more than one entry has no fixed encoding")
    if kind == "encode":
        body = canonical
    elif "body_hex" in case:
        body = bytes.fromhex(case["body_hex"])
    else:
        for inj in case.get("unknown", []):
            sub = navigate(msg, inj["at"])
            sub.MergeFromString(unknown_bytes(case, sub.DESCRIPTOR, inj["fields"]))
        body = unknown_bytes(case, cls.DESCRIPTOR, case.get("prefix", [])) + msg.SerializeToString()
    try:
        back = cls.FromString(body)
    except Exception as e:  # DecodeError: say which case
        fail(case, "body does not decode: %s" % e)
    if to_json(back) != case["json"]:
        fail(case, "body decodes as %s" % json.dumps(to_json(back)))
    if case.get("canonical") and body != canonical:
        fail(case, "marked canonical but the body is not the serialisation of json")
    if kind == "decode" and "canonical" not in case and body == canonical:
        fail(case, "decode-only case whose body is canonical: mark it canonical "
                   "(or \"canonical\": false if other encoders differ)")
    out = {"name": case["name"], "type": case["type"]}
    if case.get("note"):
        out["note"] = case["note"]
    if case.get("canonical"):
        out["canonical"] = True
    out["json"] = case["json"]
    out["frame"] = (len(body).to_bytes(4, "big") + body).hex()
    return out


def main():
    cases = json.load(open(sys.argv[1]))
    names = set()
    result = {"version": 1,
              "generated_by": "proto/testdata/gen.sh from cases.json (python protobuf %s)" % pb_version,
              "encode": [], "decode": []}
    for kind in ("encode", "decode"):
        for case in cases[kind]:
            if case["name"] in names:
                fail(case, "duplicate name")
            names.add(case["name"])
            if kind == "encode" and case["type"] != "ClientMessage":
                fail(case, "encode cases are ClientMessages")
            result[kind].append(build(case, kind))
    with open(sys.argv[3], "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("gen_vectors: %d encode and %d decode cases -> %s"
          % (len(result["encode"]), len(result["decode"]), sys.argv[3]))


if __name__ == "__main__":
    main()
