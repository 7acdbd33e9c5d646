//! The payload checksums S3 clients send (`x-amz-checksum-<algorithm>`, in a header or an
//! `aws-chunked` trailer, base64 of the big-endian value) and `Content-MD5`; each computed
//! over the body as it is received, and compared once it has all come.

use base64::Engine;
use md5::Digest as _;

/// One algorithm's running value.
pub enum Checksum {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(u64),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

/// CRC-64/NVME, reflected polynomial: small objects only carry it, and a table costs little.
const CRC64_NVME_POLY: u64 = 0x9a6c_9329_ac4b_c9b5;

fn crc64_table() -> &'static [u64; 256] {
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0u64; 256];
        for (i, v) in t.iter_mut().enumerate() {
            let mut c = i as u64;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ CRC64_NVME_POLY
                } else {
                    c >> 1
                };
            }
            *v = c;
        }
        t
    })
}

impl Checksum {
    /// The algorithm a header or trailer names (`x-amz-checksum-crc32` ...), lower case.
    pub fn for_header(name: &str) -> Option<Checksum> {
        Some(match name.strip_prefix("x-amz-checksum-")? {
            "crc32" => Checksum::Crc32(crc32fast::Hasher::new()),
            "crc32c" => Checksum::Crc32c(0),
            "crc64nvme" => Checksum::Crc64Nvme(!0),
            "sha1" => Checksum::Sha1(sha1::Sha1::new()),
            "sha256" => Checksum::Sha256(sha2::Sha256::new()),
            _ => return None,
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Checksum::Crc32(h) => h.update(data),
            Checksum::Crc32c(v) => *v = crc32c::crc32c_append(*v, data),
            Checksum::Crc64Nvme(v) => {
                let t = crc64_table();
                for &b in data {
                    *v = t[((*v ^ u64::from(b)) & 0xff) as usize] ^ (*v >> 8);
                }
            }
            Checksum::Sha1(h) => h.update(data),
            Checksum::Sha256(h) => sha2::Digest::update(h, data),
        }
    }

    /// The value as the header carries it: base64 of the big-endian bytes.
    pub fn finish_base64(self) -> String {
        let bytes: Vec<u8> = match self {
            Checksum::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Checksum::Crc32c(v) => v.to_be_bytes().to_vec(),
            Checksum::Crc64Nvme(v) => (!v).to_be_bytes().to_vec(),
            Checksum::Sha1(h) => h.finalize().to_vec(),
            Checksum::Sha256(h) => sha2::Digest::finalize(h).to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// MD5 as S3 uses it (ETag, `Content-MD5`), over a streamed body.
#[derive(Default, Clone)]
pub struct Md5(md5::Md5);

impl Md5 {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data)
    }
    pub fn finish(self) -> [u8; 16] {
        self.0.finalize().into()
    }
}

/// Lower-case hex of an MD5 (an ETag's inside).
pub fn md5_hex(md5: &[u8; 16]) -> String {
    super::sigv4::hex(md5)
}

/// `Content-MD5`'s base64 of an MD5.
pub fn md5_base64(md5: &[u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str, data: &[u8]) -> String {
        let mut c = Checksum::for_header(name).unwrap();
        c.update(&data[..3]);
        c.update(&data[3..]);
        c.finish_base64()
    }

    #[test]
    fn known_values_of_123456789() {
        // the check values of each CRC's catalogue entry, as base64 of big-endian bytes
        let data = b"123456789";
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        assert_eq!(
            of("x-amz-checksum-crc32", data),
            b64(&0xcbf43926u32.to_be_bytes())
        );
        assert_eq!(
            of("x-amz-checksum-crc32c", data),
            b64(&0xe3069283u32.to_be_bytes())
        );
        assert_eq!(
            of("x-amz-checksum-crc64nvme", data),
            b64(&0xae8b14860a799888u64.to_be_bytes())
        );
        assert_eq!(
            of("x-amz-checksum-sha256", b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(
            of("x-amz-checksum-sha1", b"abc"),
            "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="
        );
        assert!(Checksum::for_header("x-amz-checksum-md4").is_none());
    }

    #[test]
    fn md5_of_the_empty_body() {
        let m = Md5::default().finish();
        assert_eq!(md5_hex(&m), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_base64(&m), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
