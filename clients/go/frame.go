package slotgate

import (
	"encoding/binary"
	"fmt"

	pb "github.com/slotgate/slotgate/clients/go/slotgatepb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Frame codec (PROTOCOL.md section 2): a 4-byte big-endian body length,
// then one ClientMessage / ServerMessage. Pure functions, no I/O.

var cachedSize = proto.MarshalOptions{UseCachedSize: true}

// appendRequestFrame appends the frame of ClientMessage{request: r} to buf.
// It writes the oneof wrapper by hand (field 2, LEN) around the generated
// encoding of r, which is what proto.Marshal of the ClientMessage produces,
// without allocating the wrapper.
func appendRequestFrame(buf []byte, r *pb.Request) []byte {
	return appendWrapped(buf, 2, r)
}

func appendWrapped(buf []byte, field protowire.Number, m proto.Message) []byte {
	n := proto.Size(m) // caches the size in m for UseCachedSize below
	body := protowire.SizeTag(field) + protowire.SizeBytes(n)
	buf = binary.BigEndian.AppendUint32(buf, uint32(body))
	buf = protowire.AppendTag(buf, field, protowire.BytesType)
	buf = protowire.AppendVarint(buf, uint64(n))
	buf, _ = cachedSize.MarshalAppend(buf, m) // generated messages cannot fail to marshal
	return buf
}

// AppendClientFrame appends the frame of m (length prefix and body) to buf.
// A ClientMessage with no member set is a zero-length frame.
func AppendClientFrame(buf []byte, m *pb.ClientMessage) []byte {
	switch v := m.GetMsg().(type) {
	case *pb.ClientMessage_Hello:
		return appendWrapped(buf, 1, v.Hello)
	case *pb.ClientMessage_Request:
		return appendWrapped(buf, 2, v.Request)
	}
	return binary.BigEndian.AppendUint32(buf, 0)
}

// DecodeServerMessage decodes one frame body (without the length prefix).
// Unknown fields are ignored. A Response frame, the common case, is decoded
// without the wrapper message.
func DecodeServerMessage(body []byte) (*pb.ServerMessage, error) {
	if r, ok := decodeResponseFast(body); ok {
		return &pb.ServerMessage{Msg: &pb.ServerMessage_Response{Response: r}}, nil
	}
	m := &pb.ServerMessage{}
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("undecodable server frame: %w", err)
	}
	return m, nil
}

// decodeResponseFast handles a body that is exactly one field-2 LEN record
// (ServerMessage.response and nothing else).
func decodeResponseFast(body []byte) (*pb.Response, bool) {
	if len(body) < 2 || body[0] != 0x12 {
		return nil, false
	}
	n, k := protowire.ConsumeVarint(body[1:])
	if k < 0 || uint64(len(body)-1-k) != n {
		return nil, false
	}
	r := &pb.Response{}
	if err := proto.Unmarshal(body[1+k:], r); err != nil {
		return nil, false
	}
	return r, true
}
