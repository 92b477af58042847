//! The on-disk record format.
//!
//! ```text
//! offset  size  field
//! 0       4     payload length in bytes (u32, little endian)
//! 4       4     CRC32 (u32, little endian) over: record index (u64 LE),
//!               the length field, the kind byte and the payload
//! 8       8     record index (u64, little endian)
//! 16      1     kind (chosen by the user of the log)
//! 17      len   payload
//! ```
//!
//! The index follows from the record's position, and it is also stored and
//! covered by the checksum. Covered: a record that is intact yet sits at
//! the wrong place (stale bytes from an older file, a segment renamed by
//! hand) fails its check instead of being read as the wrong entry. Stored:
//! after damage, recovery can find the records that follow it by scanning
//! byte by byte for a header whose index is plausible, and tell "a torn
//! tail" (nothing valid after the damage) from "written data was damaged"
//! (valid records follow), which it must never drop silently.

/// Bytes before the payload.
pub const HEADER_SIZE_BYTES: usize = 17;

/// A record as it is handed to `append`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub kind: u8,
    pub payload: &'a [u8],
}

/// A record as it is read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub index: u64,
    pub kind: u8,
    pub payload: Vec<u8>,
}

pub fn checksum(index: u64, len_field: [u8; 4], kind: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_le_bytes());
    hasher.update(&len_field);
    hasher.update(&[kind]);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends the encoded record to `buf`. The caller has checked the size
/// limit, so the length always fits the u32 field.
pub fn encode_into(buf: &mut Vec<u8>, index: u64, record: RecordRef<'_>) {
    let len = u32::try_from(record.payload.len()).expect("record size checked against max_record_bytes");
    let len_field = len.to_le_bytes();
    let crc = checksum(index, len_field, record.kind, record.payload);
    buf.extend_from_slice(&len_field);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(&index.to_le_bytes());
    buf.push(record.kind);
    buf.extend_from_slice(record.payload);
}

/// The parsed header of a record.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub payload_len: u32,
    pub crc: u32,
    pub index: u64,
    pub kind: u8,
}

impl Header {
    pub fn parse(bytes: &[u8; HEADER_SIZE_BYTES]) -> Header {
        Header {
            payload_len: u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")),
            crc: u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")),
            index: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
            kind: bytes[16],
        }
    }

    /// True if this is record `index`, intact.
    pub fn verify(&self, index: u64, payload: &[u8]) -> bool {
        self.index == index && checksum(index, self.payload_len.to_le_bytes(), self.kind, payload) == self.crc
    }

    pub fn record_size_bytes(&self) -> u64 {
        HEADER_SIZE_BYTES as u64 + u64::from(self.payload_len)
    }
}

/// A batch of records owned in one buffer, for handing appends to the
/// group-commit thread without one allocation per record.
#[derive(Clone, Debug, Default)]
pub struct RecordBatch {
    bytes: Vec<u8>,
    // (kind, end offset of the payload in `bytes`)
    items: Vec<(u8, u32)>,
}

impl RecordBatch {
    pub fn new() -> RecordBatch {
        RecordBatch::default()
    }

    pub fn push(&mut self, kind: u8, payload: &[u8]) {
        self.bytes.extend_from_slice(payload);
        let end = u32::try_from(self.bytes.len()).expect("a record batch stays below 4 GiB");
        self.items.push((kind, end));
    }

    /// Encodes a payload in place with `write` (for example a serializer),
    /// avoiding an intermediate buffer.
    pub fn push_with(&mut self, kind: u8, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.bytes);
        let end = u32::try_from(self.bytes.len()).expect("a record batch stays below 4 GiB");
        self.items.push((kind, end));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn payload_bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> + Clone + '_ {
        let mut start = 0usize;
        self.items.iter().map(move |(kind, end)| {
            let end = *end as usize;
            let record = RecordRef { kind: *kind, payload: &self.bytes[start..end] };
            start = end;
            record
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_record_parses_and_verifies() {
        let mut buf = Vec::new();
        encode_into(&mut buf, 7, RecordRef { kind: 3, payload: b"hello" });
        assert_eq!(buf.len(), HEADER_SIZE_BYTES + 5);
        let header = Header::parse(buf[..HEADER_SIZE_BYTES].try_into().unwrap());
        assert_eq!((header.payload_len, header.index, header.kind), (5, 7, 3));
        assert!(header.verify(7, &buf[HEADER_SIZE_BYTES..]));
    }

    #[test]
    fn checksum_binds_the_record_to_its_index() {
        let mut buf = Vec::new();
        encode_into(&mut buf, 7, RecordRef { kind: 3, payload: b"hello" });
        let header = Header::parse(buf[..HEADER_SIZE_BYTES].try_into().unwrap());
        assert!(!header.verify(8, &buf[HEADER_SIZE_BYTES..]));
        // Rewriting the stored index does not move the record either: the
        // checksum still names index 7.
        buf[8..16].copy_from_slice(&8u64.to_le_bytes());
        let header = Header::parse(buf[..HEADER_SIZE_BYTES].try_into().unwrap());
        assert!(!header.verify(8, &buf[HEADER_SIZE_BYTES..]));
    }

    #[test]
    fn batch_iterates_its_records_in_order() {
        let mut batch = RecordBatch::new();
        batch.push(1, b"a");
        batch.push(2, b"");
        batch.push_with(3, |b| b.extend_from_slice(b"xyz"));
        let got: Vec<_> = batch.iter().map(|r| (r.kind, r.payload.to_vec())).collect();
        assert_eq!(got, vec![(1, b"a".to_vec()), (2, vec![]), (3, b"xyz".to_vec())]);
    }
}
