package slotgate

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	pb "github.com/slotgate/slotgate/clients/go/slotgatepb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The golden vectors of proto/testdata/: every encode case must be produced
// byte for byte by the client's frame encoder, every decode case must decode
// (unknown fields ignored) to the message its JSON describes.

type vector struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	JSON  json.RawMessage `json:"json"`
	Frame string          `json:"frame"`
}

func loadVectors(t *testing.T) (enc, dec []vector) {
	t.Helper()
	raw, err := os.ReadFile("../../proto/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version int      `json:"version"`
		Encode  []vector `json:"encode"`
		Decode  []vector `json:"decode"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if f.Version != 1 || len(f.Encode) == 0 || len(f.Decode) == 0 {
		t.Fatalf("vectors.json: version %d, %d encode, %d decode cases", f.Version, len(f.Encode), len(f.Decode))
	}
	return f.Encode, f.Decode
}

func TestVectorsEncode(t *testing.T) {
	enc, _ := loadVectors(t)
	for _, v := range enc {
		t.Run(v.Name, func(t *testing.T) {
			if v.Type != "ClientMessage" {
				t.Fatalf("encode case of type %s", v.Type)
			}
			m := &pb.ClientMessage{}
			if err := protojson.Unmarshal(v.JSON, m); err != nil {
				t.Fatalf("json: %v", err)
			}
			want, err := hex.DecodeString(v.Frame)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if r := m.GetRequest(); r != nil {
				got = appendRequestFrame(nil, r) // the client's send path
			} else {
				got = AppendClientFrame(nil, m)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("frame mismatch\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestVectorsDecode(t *testing.T) {
	_, dec := loadVectors(t)
	for _, v := range dec {
		t.Run(v.Name, func(t *testing.T) {
			frame, err := hex.DecodeString(v.Frame)
			if err != nil {
				t.Fatal(err)
			}
			if len(frame) < 4 || int(uint32(frame[0])<<24|uint32(frame[1])<<16|uint32(frame[2])<<8|uint32(frame[3])) != len(frame)-4 {
				t.Fatalf("bad length prefix in %s", v.Frame)
			}
			body := frame[4:]
			var got, want proto.Message
			switch v.Type {
			case "ServerMessage":
				m, err := DecodeServerMessage(body)
				if err != nil {
					t.Fatal(err)
				}
				got, want = m, &pb.ServerMessage{}
			case "ClientMessage":
				m := &pb.ClientMessage{}
				if err := proto.Unmarshal(body, m); err != nil {
					t.Fatal(err)
				}
				got, want = m, &pb.ClientMessage{}
			default:
				t.Fatalf("unknown type %s", v.Type)
			}
			if err := protojson.Unmarshal(v.JSON, want); err != nil {
				t.Fatalf("json: %v", err)
			}
			discardUnknown(got.ProtoReflect())
			if !proto.Equal(got, want) {
				t.Fatalf("decoded %v\nwant %v", got, want)
			}
		})
	}
}

func discardUnknown(m protoreflect.Message) {
	m.SetUnknown(nil)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				discardUnknown(l.Get(i).Message())
			}
			return true
		}
		discardUnknown(v.Message())
		return true
	})
}

// The first frame of a Response is decoded without the wrapper; the result
// must equal the generic decoding for every vector.
func TestFastResponseDecodeMatchesGeneric(t *testing.T) {
	_, dec := loadVectors(t)
	for _, v := range dec {
		if v.Type != "ServerMessage" {
			continue
		}
		frame, _ := hex.DecodeString(v.Frame)
		fast, err := DecodeServerMessage(frame[4:])
		if err != nil {
			t.Fatal(err)
		}
		slow := &pb.ServerMessage{}
		if err := proto.Unmarshal(frame[4:], slow); err != nil {
			t.Fatal(err)
		}
		discardUnknown(fast.ProtoReflect())
		discardUnknown(slow.ProtoReflect())
		if !proto.Equal(fast, slow) {
			t.Fatalf("%s: fast %v slow %v", v.Name, fast, slow)
		}
	}
}
