//! An answer's body as it arrives: decoded from gzip when the server compressed it, and
//! counted against a size cap AFTER decoding, so that no answer (a huge one, an endless one, a
//! small "gzip bomb") can take more of the host's memory than the cap.
//!
//! The HTTP layer (`http.rs`) pushes the network's chunks in; the fuzz target `read_registry`
//! pushes the fuzzer's bytes in through the very same [`BodyDecoder`], so the code that decodes
//! and caps a registry answer in production is the code that is fuzzed. (reqwest can decode
//! gzip itself, but inside its network stream, where no fuzzer reaches it.)

use std::io::{self, Write};

/// How the body travels (the answer's `Content-Encoding`). We only ever offer gzip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// The encoding a `Content-Encoding` header value names, or why it is not one we read.
    pub fn from_header(value: Option<&[u8]>) -> Result<Encoding, String> {
        let Some(value) = value else {
            return Ok(Encoding::Identity);
        };
        let name = String::from_utf8_lossy(value);
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(Encoding::Identity),
            // `x-gzip` is the old name (RFC 9110 asks recipients to treat it as gzip).
            "gzip" | "x-gzip" => Ok(Encoding::Gzip),
            _ => Err(format!(
                "the answer is encoded as '{}', which was not asked for (only gzip is)",
                name.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// It decodes to more than the cap.
    TooLarge,
    /// Not valid gzip (bad header, bad deflate data, wrong checksum, cut short, or data after
    /// the end of the stream).
    Corrupt(String),
}

/// Decodes a body pushed in chunks, keeping at most `cap` decoded bytes.
pub struct BodyDecoder {
    inner: Inner,
    /// Whether any byte came in: an empty body is empty whatever its encoding claims.
    received: bool,
}

enum Inner {
    Identity(Capped),
    // Boxed: the decoder carries its inflate state (tens of KiB) and is moved around.
    Gzip(Box<flate2::write::GzDecoder<Capped>>),
}

/// The decoded bytes, refusing to grow beyond the cap: a write that would is cut at the cap
/// and fails, which stops the gzip decoder at once (it never produces the rest).
struct Capped {
    bytes: Vec<u8>,
    cap: usize,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.cap - self.bytes.len();
        if data.len() > room {
            self.bytes.extend_from_slice(&data[..room]);
            self.over = true;
            return Err(io::Error::other("over the cap"));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BodyDecoder {
    pub fn new(encoding: Encoding, cap: usize) -> BodyDecoder {
        let capped = Capped {
            bytes: Vec::new(),
            cap,
            over: false,
        };
        BodyDecoder {
            inner: match encoding {
                Encoding::Identity => Inner::Identity(capped),
                Encoding::Gzip => Inner::Gzip(Box::new(flate2::write::GzDecoder::new(capped))),
            },
            received: false,
        }
    }

    /// Decodes one chunk. After an error the decoder is spent: only
    /// [`decoded`](BodyDecoder::decoded) is still meaningful.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<(), BodyError> {
        self.received |= !chunk.is_empty();
        match &mut self.inner {
            Inner::Identity(capped) => match capped.write(chunk) {
                Ok(_) => Ok(()),
                Err(_) => Err(BodyError::TooLarge),
            },
            Inner::Gzip(decoder) => {
                while !chunk.is_empty() {
                    match decoder.write(chunk) {
                        Ok(0) => {
                            return Err(BodyError::Corrupt(
                                "data after the end of the gzip stream".into(),
                            ))
                        }
                        Ok(n) => chunk = &chunk[n..],
                        Err(_) if decoder.get_ref().over => return Err(BodyError::TooLarge),
                        Err(e) => return Err(BodyError::Corrupt(e.to_string())),
                    }
                }
                Ok(())
            }
        }
    }

    /// Once every chunk was pushed: checks that the gzip stream ended properly (complete,
    /// checksum and length right) and writes out the last decoded bytes (the decoder holds up
    /// to 32 KiB back, so a body over the cap may only be found over it here).
    pub fn finish(&mut self) -> Result<(), BodyError> {
        match &mut self.inner {
            Inner::Identity(_) => Ok(()),
            Inner::Gzip(_) if !self.received => Ok(()),
            Inner::Gzip(decoder) => match decoder.try_finish() {
                Ok(()) => Ok(()),
                Err(_) if decoder.get_ref().over => Err(BodyError::TooLarge),
                Err(e) => Err(BodyError::Corrupt(e.to_string())),
            },
        }
    }

    /// What was decoded (at most the cap): the body after a successful
    /// [`finish`](BodyDecoder::finish), or after an error the part of it decoded so far.
    pub fn decoded(self) -> Vec<u8> {
        match self.inner {
            Inner::Identity(capped) => capped.bytes,
            Inner::Gzip(mut decoder) => std::mem::take(&mut decoder.get_mut().bytes),
        }
    }

    /// How many decoded bytes there are so far.
    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Identity(capped) => capped.bytes.len(),
            Inner::Gzip(decoder) => decoder.get_ref().bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A whole body at once (what the fuzz target and tests use; the HTTP layer pushes chunks).
pub fn decode(encoding: Encoding, body: &[u8], cap: usize) -> Result<Vec<u8>, BodyError> {
    let mut decoder = BodyDecoder::new(encoding, cap);
    decoder.push(body)?;
    decoder.finish()?;
    Ok(decoder.decoded())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_decodes_in_any_chunking_and_is_capped_after_decoding() {
        let plain: Vec<u8> = (0..100_000u32).flat_map(|n| n.to_le_bytes()).collect();
        let packed = gzip(&plain);
        for size in [1, 7, 4096, packed.len()] {
            let mut decoder = BodyDecoder::new(Encoding::Gzip, plain.len());
            for chunk in packed.chunks(size) {
                decoder.push(chunk).unwrap();
            }
            decoder.finish().unwrap();
            assert_eq!(decoder.decoded(), plain);
        }
        // One byte less room than it decodes to: refused, and never more than the cap held.
        // (The decoder may hold the last bytes back until `finish`.)
        let mut decoder = BodyDecoder::new(Encoding::Gzip, plain.len() - 1);
        let outcome = decoder.push(&packed).and_then(|()| decoder.finish());
        assert_eq!(outcome, Err(BodyError::TooLarge));
        assert_eq!(decoder.decoded(), &plain[..plain.len() - 1]);
        // A bomb: 100 MB of zeros in about 100 KB, stopped at the cap.
        let bomb = gzip(&vec![0; 100 << 20]);
        assert!(bomb.len() < 200_000);
        assert_eq!(
            decode(Encoding::Gzip, &bomb, 1 << 20),
            Err(BodyError::TooLarge)
        );
    }

    #[test]
    fn broken_gzip_is_corrupt() {
        let packed = gzip(b"{\"applications\":{}}");
        let cut = &packed[..packed.len() - 3];
        assert!(matches!(
            decode(Encoding::Gzip, cut, 1000),
            Err(BodyError::Corrupt(_))
        ));
        let mut wrong_crc = packed.clone();
        let at = wrong_crc.len() - 8;
        wrong_crc[at] ^= 1;
        assert!(matches!(
            decode(Encoding::Gzip, &wrong_crc, 1000),
            Err(BodyError::Corrupt(_))
        ));
        let mut trailing = packed.clone();
        trailing.push(b'x');
        assert!(matches!(
            decode(Encoding::Gzip, &trailing, 1000),
            Err(BodyError::Corrupt(_))
        ));
        assert!(matches!(
            decode(Encoding::Gzip, b"{}", 1000),
            Err(BodyError::Corrupt(_))
        ));
        // A body-less answer (a 204) may still say gzip: empty is empty.
        assert_eq!(decode(Encoding::Gzip, b"", 1000), Ok(Vec::new()));
    }

    #[test]
    fn identity_is_capped_and_encodings_are_named() {
        assert_eq!(decode(Encoding::Identity, b"abc", 3).unwrap(), b"abc");
        assert_eq!(
            decode(Encoding::Identity, b"abcd", 3),
            Err(BodyError::TooLarge)
        );
        assert_eq!(Encoding::from_header(None), Ok(Encoding::Identity));
        assert_eq!(Encoding::from_header(Some(b" GZip ")), Ok(Encoding::Gzip));
        assert_eq!(Encoding::from_header(Some(b"x-gzip")), Ok(Encoding::Gzip));
        let e = Encoding::from_header(Some(b"br")).unwrap_err();
        assert!(e.contains("'br'"), "{e}");
    }
}
