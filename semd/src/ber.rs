//! BER to DER, for the CMS containers signing tools write with indefinite lengths
//! (CryptoPro's `cryptcp` and many CSP APIs stream the outer `ContentInfo` that way).
//!
//! RustCrypto's decoders read DER only. [`to_der`] rewrites a BER encoding in DER form where
//! BER allows what DER does not and the rewrite cannot change meaning: indefinite lengths
//! become definite, non-minimal lengths minimal, and constructed string encodings (an OCTET
//! STRING in chunks, say) become one primitive string (a BIT STRING's chunks keep one
//! unused-bits octet, the last chunk's). It does not re-sort `SET OF` members. Signed
//! attributes must be DER by RFC 5652 §5.4 whatever the container; a DER part of the input
//! is copied byte for byte, so when they are, the bytes the signature is over are unchanged
//! (when they are not, the signature does not verify — as at REMD). DER input comes back
//! unchanged (borrowed). An implicitly tagged string in constructed form is left as it is
//! (its type is not known here), so such a container does not decode.
//!
//! Bounded: nesting at most [`MAX_DEPTH`], at most [`MAX_VALUES`] values, one pass over the
//! input; the output is at most a few bytes per value longer than the input (an indefinite
//! length of 64 KiB or more takes 4 octets where the input took 2).

use std::borrow::Cow;

/// The deepest nesting of constructed values accepted (a CMS container nests about 12 deep).
pub const MAX_DEPTH: usize = 64;
/// Most values in one encoding (a signature with its certificate has a few hundred): the
/// tree of a rewrite costs about 100 bytes a value, so this bounds its memory at ~5 MB.
pub const MAX_VALUES: usize = 50_000;

/// Why a BER encoding could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BerError(pub &'static str);

impl std::fmt::Display for BerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// `input` (one BER value, nothing after it) in DER form; borrowed when it already is DER.
pub fn to_der(input: &[u8]) -> Result<Cow<'_, [u8]>, BerError> {
    let mut reader = Reader { input, pos: 0, values: 0 };
    let value = reader.value(0)?;
    if reader.pos != input.len() {
        return Err(BerError("данные после конца контейнера"));
    }
    if value.is_der {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(input.len());
    value.write(&mut out);
    Ok(Cow::Owned(out))
}

/// A decoded value, kept as a tree only where it must be rewritten.
struct Value<'a> {
    /// The identifier octets, as read (tag number and class are kept).
    tag: &'a [u8],
    body: Body<'a>,
    /// Encoded exactly as DER would (so it can be copied as it is).
    is_der: bool,
    /// The whole encoding as read, for copying when `is_der`.
    raw: &'a [u8],
}

enum Body<'a> {
    Primitive(&'a [u8]),
    Constructed(Vec<Value<'a>>),
    /// A constructed string, to be written primitive: the concatenated chunks.
    Joined(Vec<u8>),
}

/// Universal string types a BER encoder may split into constructed chunks (X.690 §8.21,
/// 8.6, 8.7): BIT STRING, OCTET STRING, the character strings, and the time types.
fn is_string_type(first_tag_octet: u8) -> bool {
    let universal = first_tag_octet & 0xC0 == 0;
    universal
        && matches!(first_tag_octet & 0x1F, 3 | 4 | 12 | 18 | 19 | 20 | 21 | 22 | 23 | 24 | 25 | 26 | 27 | 28 | 30)
}

const BIT_STRING: u8 = 3;

impl Value<'_> {
    fn content_len(&self) -> usize {
        match &self.body {
            Body::Primitive(b) => b.len(),
            Body::Joined(b) => b.len(),
            Body::Constructed(children) => children.iter().map(Value::encoded_len).sum(),
        }
    }

    fn encoded_len(&self) -> usize {
        if self.is_der {
            return self.raw.len();
        }
        let len = self.content_len();
        self.tag.len() + length_len(len) + len
    }

    fn write(&self, out: &mut Vec<u8>) {
        if self.is_der {
            out.extend_from_slice(self.raw);
            return;
        }
        let mut tag = self.tag.to_vec();
        if matches!(self.body, Body::Joined(_)) {
            tag[0] &= !0x20; // primitive
        }
        out.extend_from_slice(&tag);
        write_length(out, self.content_len());
        match &self.body {
            Body::Primitive(b) => out.extend_from_slice(b),
            Body::Joined(b) => out.extend_from_slice(b),
            Body::Constructed(children) => children.iter().for_each(|c| c.write(out)),
        }
    }
}

fn length_len(len: usize) -> usize {
    if len < 0x80 { 1 } else { 1 + (usize::BITS as usize / 8 - len.leading_zeros() as usize / 8) }
}

fn write_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    values: usize,
}

enum Length {
    Definite(usize, bool),
    Indefinite,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, BerError> {
        let b = *self.input.get(self.pos).ok_or(BerError("контейнер оборван"))?;
        self.pos += 1;
        Ok(b)
    }

    fn tag(&mut self) -> Result<&'a [u8], BerError> {
        let start = self.pos;
        let first = self.byte()?;
        if first & 0x1F == 0x1F {
            for n in 0.. {
                if n > 4 {
                    return Err(BerError("слишком длинный номер тега"));
                }
                if self.byte()? & 0x80 == 0 {
                    break;
                }
            }
        }
        Ok(&self.input[start..self.pos])
    }

    fn length(&mut self) -> Result<Length, BerError> {
        let first = self.byte()?;
        if first < 0x80 {
            return Ok(Length::Definite(first as usize, true));
        }
        if first == 0x80 {
            return Ok(Length::Indefinite);
        }
        let n = (first & 0x7F) as usize;
        if n > 4 {
            return Err(BerError("длина больше 4 ГБ"));
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = (len << 8) | self.byte()? as usize;
        }
        let minimal = len >= 0x80 && length_len(len) == 1 + n;
        Ok(Length::Definite(len, minimal))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, BerError> {
        if depth > MAX_DEPTH {
            return Err(BerError("слишком глубокая вложенность"));
        }
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(BerError("слишком много значений в контейнере"));
        }
        let start = self.pos;
        let tag = self.tag()?;
        let constructed = tag[0] & 0x20 != 0;
        let length = self.length()?;
        let (body, mut is_der) = match (length, constructed) {
            (Length::Definite(len, minimal), false) => {
                let end = self.pos.checked_add(len).filter(|e| *e <= self.input.len());
                let end = end.ok_or(BerError("длина значения больше контейнера"))?;
                let body = &self.input[self.pos..end];
                self.pos = end;
                (Body::Primitive(body), minimal)
            }
            (Length::Indefinite, false) => return Err(BerError("неопределённая длина у простого значения")),
            (Length::Definite(len, minimal), true) => {
                let end = self.pos.checked_add(len).filter(|e| *e <= self.input.len());
                let end = end.ok_or(BerError("длина значения больше контейнера"))?;
                let mut children = Vec::new();
                while self.pos < end {
                    children.push(self.value(depth + 1)?);
                }
                if self.pos != end {
                    return Err(BerError("вложенное значение выходит за длину внешнего"));
                }
                let der = minimal && children.iter().all(|c| c.is_der);
                (Body::Constructed(children), der)
            }
            (Length::Indefinite, true) => {
                let mut children = Vec::new();
                loop {
                    if self.input.get(self.pos..self.pos + 2) == Some(&[0, 0]) {
                        self.pos += 2;
                        break;
                    }
                    if self.pos >= self.input.len() {
                        return Err(BerError("нет конца значения неопределённой длины"));
                    }
                    children.push(self.value(depth + 1)?);
                }
                (Body::Constructed(children), false)
            }
        };
        let body = match body {
            Body::Constructed(children) if is_string_type(tag[0]) => {
                is_der = false;
                Body::Joined(join(tag[0] & 0x1F, children)?)
            }
            other => other,
        };
        Ok(Value { tag, body, is_der, raw: &self.input[start..self.pos] })
    }
}

/// The chunks of a constructed string of universal type `number`, concatenated (chunks
/// may nest, X.690 §8.7.3, and must be of the same type). A BIT STRING's chunks each start
/// with an unused-bits octet: every chunk but the last must have 0, and the joined string
/// carries the last one's.
fn join(number: u8, children: Vec<Value<'_>>) -> Result<Vec<u8>, BerError> {
    let mut out = if number == BIT_STRING { vec![0] } else { Vec::new() };
    let count = children.len();
    for (i, child) in children.into_iter().enumerate() {
        if child.tag.len() != 1 || child.tag[0] & 0xDF != number {
            return Err(BerError("фрагмент строки другого типа"));
        }
        let bytes: &[u8] = match &child.body {
            Body::Primitive(b) => b,
            Body::Joined(b) => b,
            Body::Constructed(_) => return Err(BerError("фрагмент строки не является строкой")),
        };
        if number == BIT_STRING {
            let (&unused, rest) =
                bytes.split_first().ok_or(BerError("фрагмент BIT STRING без октета неиспользуемых битов"))?;
            if unused > 7 || (unused != 0 && i + 1 != count) {
                return Err(BerError("неиспользуемые биты не в последнем фрагменте BIT STRING"));
            }
            out[0] = unused;
            out.extend_from_slice(rest);
        } else {
            out.extend_from_slice(bytes);
        }
    }
    Ok(out)
}

/// The DER encoding `der` rewritten with indefinite lengths on every constructed value of
/// the outer levels (ContentInfo, SignedData, the sets and SignerInfo), the signed
/// attributes and certificates left as they are (they must stay DER): a container as
/// streaming signers write it. For tests; `der` must be a well-formed CMS ContentInfo.
pub fn with_indefinite_lengths(der: &[u8]) -> Vec<u8> {
    fn rewrite(input: &[u8], depth: usize, out: &mut Vec<u8>) {
        let mut pos = 0;
        while pos < input.len() {
            let tag = input[pos];
            let (len, header) = match input[pos + 1] {
                l if l < 0x80 => (l as usize, 2),
                l => {
                    let n = (l & 0x7F) as usize;
                    let len = input[pos + 2..pos + 2 + n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
                    (len, 2 + n)
                }
            };
            let body = &input[pos + header..pos + header + len];
            // Constructed SEQUENCE / SET / [0] EXPLICIT at the outer levels, but not the
            // signed attributes ([0] IMPLICIT inside a SignerInfo, depth 5) nor certificates.
            let outer = tag & 0x20 != 0 && depth < 5 && !(tag == 0xA0 && depth == 3);
            if outer {
                out.push(tag);
                out.push(0x80);
                rewrite(body, depth + 1, out);
                out.extend([0, 0]);
            } else {
                out.extend_from_slice(&input[pos..pos + header + len]);
            }
            pos += header + len;
        }
    }
    let mut out = Vec::with_capacity(der.len() + 64);
    rewrite(der, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_comes_back_borrowed() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xAA];
        assert!(matches!(to_der(&der), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn indefinite_lengths_become_definite() {
        // SEQUENCE (indefinite) { INTEGER 5, SEQUENCE (indefinite) { OCTET STRING AA } }
        let ber = [0x30, 0x80, 0x02, 0x01, 0x05, 0x30, 0x80, 0x04, 0x01, 0xAA, 0x00, 0x00, 0x00, 0x00];
        let der = to_der(&ber).unwrap();
        assert_eq!(&*der, &[0x30, 0x08, 0x02, 0x01, 0x05, 0x30, 0x03, 0x04, 0x01, 0xAA]);
    }

    #[test]
    fn constructed_strings_are_joined_and_long_lengths_shortened() {
        // OCTET STRING constructed { AA BB } { CC }, then a non-minimal length 0x81 0x01.
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, 0xAA, 0xBB, 0x04, 0x01, 0xCC, 0x00, 0x00, 0x02, 0x81, 0x01, 0x07, 0x00,
            0x00,
        ];
        let der = to_der(&ber).unwrap();
        assert_eq!(&*der, &[0x30, 0x08, 0x04, 0x03, 0xAA, 0xBB, 0xCC, 0x02, 0x01, 0x07]);
    }

    #[test]
    fn bit_string_chunks_keep_one_unused_bits_octet() {
        let ber = [0x23, 0x80, 0x03, 0x02, 0x00, 0xAA, 0x03, 0x02, 0x04, 0xB0, 0x00, 0x00];
        assert_eq!(&*to_der(&ber).unwrap(), &[0x03, 0x03, 0x04, 0xAA, 0xB0]);
        let unused_inside = [0x23, 0x80, 0x03, 0x02, 0x04, 0xA0, 0x03, 0x02, 0x00, 0xBB, 0x00, 0x00];
        assert!(to_der(&unused_inside).is_err());
        let other_type = [0x24, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00];
        assert!(to_der(&other_type).is_err(), "an INTEGER is no chunk of an OCTET STRING");
    }

    #[test]
    fn long_definite_lengths_are_written_minimally() {
        let mut ber = vec![0x30, 0x80, 0x04, 0x82, 0x01, 0x00];
        ber.extend(std::iter::repeat_n(0x11, 256));
        ber.extend([0, 0]);
        let der = to_der(&ber).unwrap();
        assert_eq!(&der[..6], &[0x30, 0x82, 0x01, 0x04, 0x04, 0x82]);
        assert_eq!(der.len(), 4 + 4 + 256);
    }

    #[test]
    fn hostile_input_is_refused() {
        assert!(to_der(&[]).is_err());
        assert!(to_der(&[0x30, 0x80, 0x02, 0x01, 0x05]).is_err(), "no end-of-contents");
        assert!(to_der(&[0x04, 0x80, 0x00, 0x00]).is_err(), "indefinite primitive");
        assert!(to_der(&[0x30, 0x05, 0x02, 0x01]).is_err(), "length past the end");
        assert!(to_der(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err(), "length over 4 GB");
        assert!(to_der(&[0x02, 0x01, 0x05, 0x00]).is_err(), "trailing data");
        let deep: Vec<u8> = std::iter::repeat_n([0x30, 0x80], MAX_DEPTH + 2).flatten().collect();
        assert!(to_der(&deep).is_err(), "nesting");
        let mut chunks = vec![0x24, 0x80];
        chunks.extend([0x04, 0x00].repeat(MAX_VALUES + 1));
        chunks.extend([0, 0]);
        assert!(to_der(&chunks).is_err(), "too many values");
    }
}
