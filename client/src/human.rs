//! Human-readable figures exactly as the C tools print them (config-cli-http.md 4.15), and MD5
//! for anti-steal tokens.

const KB: i64 = 1 << 10;
const MB: i64 = 1 << 20;
const GB: i64 = 1 << 30;
const TB: i64 = 1 << 40;
const PB: i64 = 1 << 50;
const EB: i64 = 1 << 60;

fn scaled(bytes: i64, unit: i64) -> String {
    let mut n = bytes / unit;
    let remain = bytes - n * unit;
    if n < 10 {
        let mut frag = (remain * 10 + unit / 2) / unit;
        if frag == 10 {
            n += 1;
            frag = 0;
        }
        if n < 10 {
            return format!("{n}.{frag}");
        }
        n.to_string()
    } else {
        if remain >= unit / 2 {
            n += 1;
        }
        n.to_string()
    }
}

/// `252 GB`, `2.5 GB`, `0  B`.
pub fn bytes_to_human(bytes: i64) -> String {
    let (unit, name) = if bytes < KB {
        return format!("{bytes}  B");
    } else if bytes < MB {
        (KB, 'K')
    } else if bytes < GB {
        (MB, 'M')
    } else if bytes < TB {
        (GB, 'G')
    } else if bytes < PB {
        (TB, 'T')
    } else if bytes < EB {
        (PB, 'P')
    } else {
        (EB, 'E')
    };
    format!("{} {name}B", scaled(bytes, unit))
}

pub fn mb_to_human(mb: i64) -> String {
    bytes_to_human(mb.saturating_mul(MB))
}

/// `1 day 2 hours 5 seconds`, `0 second`.
pub fn seconds_to_human(seconds: i64) -> String {
    let s = seconds.max(0);
    let parts = [
        (s / 86400, "day"),
        (s % 86400 / 3600, "hour"),
        (s % 3600 / 60, "minute"),
        (s % 60, "second"),
    ];
    let Some(first) = parts.iter().position(|p| p.0 > 0) else {
        return "0 second".into();
    };
    let mut out = Vec::new();
    for (n, unit) in &parts[first..] {
        if *n == 1 {
            out.push(format!("1 {unit}"));
        } else if *n > 1 {
            out.push(format!("{n} {unit}s"));
        }
    }
    out.join(" ")
}

/// MD5 (RFC 1321), enough for the 32-hex-digit anti-steal token.
pub fn md5_hex(input: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
        .collect();
    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0) =
        (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes_to_human(0), "0  B");
        assert_eq!(mb_to_human(258019), "252 GB");
        assert_eq!(mb_to_human(2560), "2.5 GB");
        assert_eq!(mb_to_human(1024), "1.0 GB");
        assert_eq!(format!("{:>7}", mb_to_human(258019)), " 252 GB");
    }

    #[test]
    fn durations() {
        assert_eq!(seconds_to_human(0), "0 second");
        assert_eq!(
            seconds_to_human(86400 + 7200 + 5),
            "1 day 2 hours 5 seconds"
        );
    }

    #[test]
    fn token() {
        // verified upstream example (config-cli-http.md 5.5)
        let t = crate::anti_steal_token(
            "group1/M00/00/00/fwAAA2sEzDmALZHpAAAAE2WoGAU383.txt",
            "FastDFS1234567890",
            1795476537,
        );
        assert_eq!(t, "9dd42d569bc97119f3f838756b9529e3");
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
