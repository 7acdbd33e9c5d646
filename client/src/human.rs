//! Human-readable figures exactly as the C tools print them (docs/protocol/config-cli-http.md
//! 4.15).

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
}
