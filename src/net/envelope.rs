//! The envelope every frame carries, and the codec that frames it.
//!
//! Wire format of one frame:
//!
//! ```text
//! u32 BE   length of the rest (tokio-util LengthDelimitedCodec's default)
//! ...      postcard-encoded EnvelopeHeader { version, kind, from, to }
//! ...      payload: every remaining byte of the frame, opaque
//! ```
//!
//! The payload is not length-prefixed inside the frame: it is the rest of
//! the frame, so decoding slices it out of the read buffer without a copy.
//! The length prefix is checked against `max_frame_bytes` before a single
//! byte of the body is buffered, so a hostile prefix claiming 4 GiB closes
//! the connection instead of allocating.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use replab_api::NodeId;

/// Bumped on any incompatible change of the envelope, the handshake or the
/// client protocol. 2 added `Detector`; 3 added the lab's admin requests
/// (`RequestBody::Admin`) and their answers.
pub const PROTOCOL_VERSION: u16 = 3;

/// Fixed bound on a postcard-encoded header (u16 + tag + two u64 varints).
const MAX_HEADER_BYTES: usize = 3 + 1 + 10 + 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// A plugin message between peers.
    Peer,
    /// A client's request to a node.
    ClientRequest,
    /// A node's response to a client.
    ClientResponse,
    /// Operator commands (faults, status) in process mode.
    Admin,
    /// Failure-detector traffic (heartbeats, gossip) between peers.
    Detector,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Peer, Kind::ClientRequest, Kind::ClientResponse, Kind::Admin, Kind::Detector];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct EnvelopeHeader {
    version: u16,
    kind: Kind,
    from: NodeId,
    to: NodeId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub version: u16,
    pub kind: Kind,
    pub from: NodeId,
    pub to: NodeId,
    pub payload: Bytes,
}

impl Envelope {
    pub fn new(kind: Kind, from: NodeId, to: NodeId, payload: Bytes) -> Envelope {
        Envelope { version: PROTOCOL_VERSION, kind, from, to, payload }
    }

    /// Parses one frame body. Any byte sequence gives `Ok` or `Err`, never
    /// a panic.
    pub fn decode(mut frame: BytesMut) -> Result<Envelope, String> {
        let (header, rest) =
            postcard::take_from_bytes::<EnvelopeHeader>(&frame).map_err(|e| format!("bad envelope header: {e}"))?;
        let header_len = frame.len() - rest.len();
        // Advancing and freezing moves pointers only; slicing a frozen
        // frame would touch its shared reference count twice per message.
        frame.advance(header_len);
        let payload = frame.freeze();
        Ok(Envelope { version: header.version, kind: header.kind, from: header.from, to: header.to, payload })
    }
}

/// Length-delimited frames carrying envelopes.
#[derive(Debug)]
pub struct EnvelopeCodec {
    frames: LengthDelimitedCodec,
    max_frame_bytes: usize,
    /// The inner codec consumed a length prefix and waits for the body.
    in_frame: bool,
}

impl EnvelopeCodec {
    pub fn new(max_frame_bytes: usize) -> EnvelopeCodec {
        let frames = LengthDelimitedCodec::builder().max_frame_length(max_frame_bytes).new_codec();
        EnvelopeCodec { frames, max_frame_bytes, in_frame: false }
    }

    /// A frame's length prefix was read and its body is not complete: the
    /// stream must not end here.
    pub fn in_frame(&self) -> bool {
        self.in_frame
    }
}

/// Why a connection's byte stream was refused.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Malformed(String),
    #[error("frame of {size_bytes} bytes exceeds max_frame_bytes {max_bytes}")]
    TooLarge { size_bytes: usize, max_bytes: usize },
}

impl Decoder for EnvelopeCodec {
    type Item = Envelope;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Envelope>, FrameError> {
        let before = src.len();
        match self.frames.decode(src) {
            Ok(Some(frame)) => {
                self.in_frame = false;
                Envelope::decode(frame).map(Some).map_err(FrameError::Malformed)
            }
            Ok(None) => {
                // Consuming bytes without yielding a frame means the prefix
                // was read (it is held inside the inner codec).
                self.in_frame |= src.len() < before;
                Ok(None)
            }
            // LengthDelimitedCodec reports an oversized prefix as InvalidData.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let claimed = src.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
                Err(FrameError::TooLarge { size_bytes: claimed.unwrap_or(0), max_bytes: self.max_frame_bytes })
            }
            Err(e) => Err(FrameError::Io(e)),
        }
    }
}

impl Encoder<Envelope> for EnvelopeCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Envelope, dst: &mut BytesMut) -> Result<(), FrameError> {
        let header = EnvelopeHeader { version: item.version, kind: item.kind, from: item.from, to: item.to };
        let mut head = [0u8; MAX_HEADER_BYTES];
        let head = postcard::to_slice(&header, &mut head).map_err(|e| FrameError::Malformed(e.to_string()))?;
        let body_len = head.len() + item.payload.len();
        if body_len > self.max_frame_bytes {
            return Err(FrameError::TooLarge { size_bytes: body_len, max_bytes: self.max_frame_bytes });
        }
        dst.reserve(4 + body_len);
        dst.put_u32(body_len as u32);
        dst.put_slice(head);
        dst.put_slice(&item.payload);
        Ok(())
    }
}

/// A frame whose payload is a value, serialized by postcard straight into
/// the connection's write buffer: no buffer of its own per message. The
/// bytes are exactly those of an [`Envelope`] carrying
/// `postcard::to_allocvec(&body)` (a test holds them to that).
#[derive(Clone, Debug)]
pub struct SerializedFrame<T> {
    pub kind: Kind,
    pub from: NodeId,
    pub to: NodeId,
    pub body: T,
}

/// Postcard output appended to a `BytesMut`.
struct AppendTo<'a>(&'a mut BytesMut);

impl postcard::ser_flavors::Flavor for AppendTo<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.put_u8(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.put_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl<T: Serialize> Encoder<SerializedFrame<T>> for EnvelopeCodec {
    type Error = FrameError;

    fn encode(&mut self, item: SerializedFrame<T>, dst: &mut BytesMut) -> Result<(), FrameError> {
        let header = EnvelopeHeader { version: PROTOCOL_VERSION, kind: item.kind, from: item.from, to: item.to };
        let start = dst.len();
        // The length is known only once the body is written: reserve its
        // place and fill it in after.
        dst.put_u32(0);
        let encoded = postcard::serialize_with_flavor(&header, AppendTo(dst))
            .and_then(|()| postcard::serialize_with_flavor(&item.body, AppendTo(dst)));
        let body_len = dst.len() - start - 4;
        if let Err(e) = encoded {
            dst.truncate(start);
            return Err(FrameError::Malformed(e.to_string()));
        }
        if body_len > self.max_frame_bytes {
            dst.truncate(start);
            return Err(FrameError::TooLarge { size_bytes: body_len, max_bytes: self.max_frame_bytes });
        }
        dst[start..start + 4].copy_from_slice(&(body_len as u32).to_be_bytes());
        Ok(())
    }
}

/// Encodes the frames of one directed link.
///
/// Every frame a link sends carries the same version, sender and
/// receiver, so the postcard header of each kind is encoded once, when the
/// link is made: a send then costs the length prefix and two copies. The
/// bytes are exactly what [`EnvelopeCodec`] writes (a test holds them to
/// that).
#[derive(Debug)]
pub struct LinkEncoder {
    /// Indexed by `Kind as usize`.
    headers: [HeaderBytes; Kind::ALL.len()],
    max_frame_bytes: usize,
}

#[derive(Debug, Clone, Copy)]
struct HeaderBytes {
    bytes: [u8; MAX_HEADER_BYTES],
    len: usize,
}

impl LinkEncoder {
    pub fn new(from: NodeId, to: NodeId, max_frame_bytes: usize) -> LinkEncoder {
        let header_of = |kind: Kind| {
            let header = EnvelopeHeader { version: PROTOCOL_VERSION, kind, from, to };
            let mut bytes = [0u8; MAX_HEADER_BYTES];
            let len = postcard::to_slice(&header, &mut bytes).expect("MAX_HEADER_BYTES bounds every header").len();
            HeaderBytes { bytes, len }
        };
        let headers = Kind::ALL.map(header_of);
        LinkEncoder { headers, max_frame_bytes }
    }

    /// Appends one frame to `dst`; refuses a frame above the maximum.
    pub fn encode(&self, kind: Kind, payload: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        let header = &self.headers[kind as usize];
        let body_len = header.len + payload.len();
        if body_len > self.max_frame_bytes {
            return Err(FrameError::TooLarge { size_bytes: body_len, max_bytes: self.max_frame_bytes });
        }
        dst.reserve(4 + body_len);
        dst.put_u32(body_len as u32);
        dst.put_slice(&header.bytes[..header.len]);
        dst.put_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_kind_round_trips_through_the_codec() {
        let mut codec = EnvelopeCodec::new(1 << 20);
        for kind in Kind::ALL {
            let env = Envelope::new(kind, 3, u64::MAX, Bytes::from_static(b"payload"));
            let mut buf = BytesMut::new();
            codec.encode(env.clone(), &mut buf).unwrap();
            assert_eq!(codec.decode(&mut buf).unwrap(), Some(env));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_serialized_frame_is_byte_for_byte_the_envelope_of_its_encoding() {
        let body = (7u64, String::from("value"), vec![1u8, 2, 3]);
        let mut codec = EnvelopeCodec::new(1 << 20);
        let mut direct = BytesMut::from(&b"earlier frames"[..]);
        let frame = SerializedFrame { kind: Kind::ClientResponse, from: 2, to: u64::MAX, body: body.clone() };
        codec.encode(frame, &mut direct).unwrap();
        let mut expected = BytesMut::from(&b"earlier frames"[..]);
        let payload = Bytes::from(postcard::to_allocvec(&body).unwrap());
        codec.encode(Envelope::new(Kind::ClientResponse, 2, u64::MAX, payload.clone()), &mut expected).unwrap();
        assert_eq!(direct, expected);
        direct.advance(b"earlier frames".len());
        let decoded = codec.decode(&mut direct).unwrap().unwrap();
        assert_eq!(decoded.payload, payload);
    }

    #[test]
    fn a_serialized_frame_above_the_maximum_is_refused_and_leaves_the_buffer_as_it_was() {
        let mut codec = EnvelopeCodec::new(64);
        let mut buf = BytesMut::from(&b"earlier"[..]);
        let frame = SerializedFrame { kind: Kind::ClientResponse, from: 1, to: 2, body: vec![0u8; 100] };
        let err = codec.encode(frame, &mut buf).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max_bytes: 64, .. }), "{err}");
        assert_eq!(&buf[..], b"earlier");
    }

    #[test]
    fn oversized_length_prefix_is_refused_before_buffering_the_body() {
        let mut codec = EnvelopeCodec::new(1024);
        let mut buf = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0xF0, 1, 2, 3][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max_bytes: 1024, .. }), "{err}");
        assert!(buf.capacity() < 1 << 20, "no buffer of the claimed size was allocated");
    }

    #[test]
    fn encoder_refuses_a_frame_above_the_maximum() {
        let mut codec = EnvelopeCodec::new(100);
        let env = Envelope::new(Kind::Peer, 1, 2, Bytes::from(vec![0u8; 200]));
        assert!(matches!(codec.encode(env, &mut BytesMut::new()), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn the_codec_knows_when_a_frame_is_unfinished() {
        let mut codec = EnvelopeCodec::new(1 << 20);
        let mut whole = BytesMut::new();
        codec.encode(Envelope::new(Kind::Peer, 1, 2, Bytes::from_static(b"payload")), &mut whole).unwrap();
        let mut buf = BytesMut::from(&whole[..4]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty() && codec.in_frame(), "the prefix is consumed, the frame is not done");
        buf.extend_from_slice(&whole[4..]);
        assert!(codec.decode(&mut buf).unwrap().is_some());
        assert!(!codec.in_frame());
    }

    #[test]
    fn link_encoder_refuses_a_frame_above_the_maximum() {
        let encoder = LinkEncoder::new(1, 2, 100);
        assert!(matches!(
            encoder.encode(Kind::Peer, &[0u8; 200], &mut BytesMut::new()),
            Err(FrameError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn link_encoder_writes_what_the_codec_writes(kind in 0u8..5, from: u64, to: u64, payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let kind = Kind::ALL[kind as usize];
            let payload = Bytes::from(payload);
            let (mut by_codec, mut by_link) = (BytesMut::new(), BytesMut::new());
            EnvelopeCodec::new(4096).encode(Envelope::new(kind, from, to, payload.clone()), &mut by_codec).unwrap();
            LinkEncoder::new(from, to, 4096).encode(kind, &payload, &mut by_link).unwrap();
            prop_assert_eq!(by_codec, by_link);
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut codec = EnvelopeCodec::new(4096);
            let mut buf = BytesMut::from(&bytes[..]);
            // Decode until the codec wants more bytes or refuses the stream.
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
        }

        #[test]
        fn arbitrary_frame_bodies_never_panic_the_envelope_parser(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Envelope::decode(BytesMut::from(&bytes[..]));
        }

        #[test]
        fn any_envelope_round_trips(kind in 0u8..5, from: u64, to: u64, payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let kind = Kind::ALL[kind as usize];
            let env = Envelope::new(kind, from, to, Bytes::from(payload));
            let mut codec = EnvelopeCodec::new(4096);
            let mut buf = BytesMut::new();
            codec.encode(env.clone(), &mut buf).unwrap();
            prop_assert_eq!(codec.decode(&mut buf).unwrap(), Some(env));
        }
    }
}
