//! Data generators shared by the benches: realistic canonical-JSON feed records (the indicator
//! types, the 11 ASEAN countries and others, a duplicate rate and a label mix), deterministic so
//! runs compare.

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

const TLDS: [&str; 14] = ["sg", "my", "th", "vn", "ph", "id", "la", "mm", "kh", "bn", "tl", "com", "net", "de"];
const V4: [&str; 10] = [
    "203.116.1.",
    "175.139.1.",
    "1.46.1.",
    "14.160.1.",
    "112.198.1.",
    "36.64.1.",
    "115.84.64.",
    "203.81.64.",
    "8.8.8.",
    "10.1.1.",
];
const LABELS: [&str; 6] = ["", "", "", "TLP:CLEAR", "TLP:AMBER", "TLP:RED"];

/// `n` canonical-JSON lines; about `dup_percent` % of them repeat an earlier indicator.
pub fn canonical_json_lines(n: usize, dup_percent: u64, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed | 1);
    let mut lines = Vec::with_capacity(n);
    for i in 0..n {
        let k = if i > 0 && rng.below(100) < dup_percent { rng.below(i as u64) as usize } else { i };
        let (kind, value) = match k % 4 {
            0 => ("ipv4", format!("{}{}", V4[k % V4.len()], k % 250 + 1)),
            1 => ("domain", format!("host{k}.example.{}", TLDS[k % TLDS.len()])),
            2 => ("url", format!("https://login{k}.example.{}/account?id={k}", TLDS[k % TLDS.len()])),
            _ => ("ipv6", format!("2401:7400::{:x}", k + 1)),
        };
        let label = LABELS[k % LABELS.len()];
        let tlp = if label.is_empty() { String::new() } else { format!(r#","tlp":"{label}""#) };
        lines.push(format!(
            r#"{{"type":"{kind}","value":"{value}"{tlp},"confidence":{},"threat":"phishing","tags":["bench"],"first_seen":"2024-05-01T10:00:00Z"}}"#,
            50 + k % 50
        ));
    }
    lines
}

/// A configuration with the 11 ASEAN CERTs and one feed, for benches that need one.
pub fn asean_config() -> iocflow::config::Config {
    let mut text = String::from(
        "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\npartitions = 1\n[[feeds]]\nname = \"bench\"\n\
         topic = \"feeds.bench\"\nformat = \"json\"\nprovider = \"Bench\"\ntlp = \"GREEN\"\n",
    );
    for cc in ["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN", "TL"] {
        text += &format!("[[certs]]\ncountry = \"{cc}\"\nname = \"CERT {cc}\"\n");
    }
    iocflow::config::Config::parse(&text).expect("bench config is valid")
}
