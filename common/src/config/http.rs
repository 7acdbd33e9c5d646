//! `http.*` keys and the `mime.types` file they name.

use super::ini::{ConfigError, IniFile};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `http.*` keys of storage.conf / tracker.conf, usually through `#include http.conf`.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// 0 = no HTTP listener
    pub server_port: u16,
    pub default_content_type: String,
    pub mime: MimeTypes,
    pub check_token: bool,
    pub token_ttl: i64,
    pub secret_key: String,
    /// served (200) instead of an error when the token check fails
    pub token_check_fail: Option<PathBuf>,
    /// a request carrying this header with this value skips the token check (the nginx
    /// module's `anti_steal_bypass_header_name` / `_value`)
    pub bypass_header: Option<(String, String)>,
    /// what to tell the operator once the log is open
    pub warnings: Vec<String>,
    pub multi_range: bool,
}

/// The nginx module's config, read beside storage.conf for its access rules.
pub const MODULE_CONF: &str = "mod_fastdfs.conf";

/// The `http.anti_steal.*` keys of one config file.
struct AntiSteal {
    check_token: bool,
    token_ttl: i64,
    secret_key: String,
    token_check_fail: Option<PathBuf>,
}

impl AntiSteal {
    fn from_ini(
        ini: &IniFile,
        base_dir: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<AntiSteal, ConfigError> {
        let check_token = ini.bool_or("http.anti_steal.check_token", false);
        let secret_key = ini.string_or("http.anti_steal.secret_key", "");
        let token_ttl = ini.int("http.anti_steal.token_ttl").unwrap_or(600);
        if check_token {
            if secret_key.is_empty() {
                return Err(ini.error(
                    ini.get("http.anti_steal.secret_key"),
                    "http.anti_steal.secret_key",
                    "must not be empty when http.anti_steal.check_token is true".into(),
                ));
            }
            if token_ttl <= 0 {
                return Err(ini.error(
                    ini.get("http.anti_steal.token_ttl"),
                    "http.anti_steal.token_ttl",
                    format!("{token_ttl} is invalid, must be > 0"),
                ));
            }
        }
        // upstream's sample names a file of its author's home; upstream's daemons never read
        // it, so a missing one must not stop a storage: the failure is answered 403 instead
        let token_check_fail = match ini.get("http.anti_steal.token_check_fail") {
            Some(i) if !i.value.is_empty() => {
                let dir = Path::new(&i.file).parent().unwrap_or(base_dir);
                let p = dir.join(&i.value);
                if p.is_file() {
                    Some(p)
                } else {
                    if check_token {
                        warnings.push(format!(
                                "conf file \"{}\", line {}: item \"http.anti_steal.token_check_fail\": \
                                 file {} not exist, a failed token check is answered 403",
                                i.file,
                                i.line,
                                p.display()
                            ));
                    }
                    None
                }
            }
            _ => None,
        };
        Ok(AntiSteal {
            check_token,
            token_ttl,
            secret_key,
            token_check_fail,
        })
    }
}

impl HttpConfig {
    /// Read the keys; an absent or zero `http.server_port`, or `http.disabled = true`, means
    /// no listener (and the other keys are not checked, as upstream skips them).
    pub fn from_ini(ini: &IniFile) -> Result<HttpConfig, ConfigError> {
        let port_item = ini.get("http.server_port");
        let port = match port_item {
            None => 0,
            Some(i) => u16::try_from(super::ini::atoi(&i.value)).map_err(|_| {
                ini.error(
                    Some(i),
                    "http.server_port",
                    format!("invalid port: {}", i.value),
                )
            })?,
        };
        if port == 0 || ini.bool_or("http.disabled", false) {
            return Ok(HttpConfig::default());
        }
        let base_dir = Path::new(&ini.path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let default_content_type =
            ini.string_or("http.default_content_type", "application/octet-stream");
        let mime = match ini.get("http.mime_types_filename") {
            Some(i) if !i.value.is_empty() => {
                // relative to the file that named it (http.conf beside storage.conf)
                let dir = Path::new(&i.file).parent().unwrap_or(&base_dir);
                let path = dir.join(&i.value);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ini.error(
                        Some(i),
                        "http.mime_types_filename",
                        format!("read {} fail: {e}", path.display()),
                    )
                })?;
                MimeTypes::parse(&text)
            }
            _ => MimeTypes::default(),
        };
        let mut warnings = Vec::new();
        let anti_steal = AntiSteal::from_ini(ini, &base_dir, &mut warnings)?;
        Ok(HttpConfig {
            server_port: port,
            default_content_type,
            mime,
            check_token: anti_steal.check_token,
            token_ttl: anti_steal.token_ttl,
            secret_key: anti_steal.secret_key,
            token_check_fail: anti_steal.token_check_fail,
            bypass_header: None,
            warnings,
            multi_range: ini.bool_or("http.multi_range.enabled", true),
        })
    }

    /// fastdfs-nginx-module's `mod_fastdfs.conf` in `dir` (beside storage.conf), when the
    /// built-in server runs: where it asks for token checks, they are made with its keys (the
    /// tokens clients were given for nginx), and its bypass header is honoured, so a storage
    /// taking over from nginx never serves files with weaker checks than nginx made.
    pub fn apply_module_conf(&mut self, dir: &Path) -> Result<(), ConfigError> {
        let path = dir.join(MODULE_CONF);
        if !self.enabled() || !path.is_file() {
            return Ok(());
        }
        let ini = IniFile::load(&path)?;
        let mut warnings = Vec::new();
        let module = AntiSteal::from_ini(&ini, dir, &mut warnings)?;
        if module.check_token {
            self.check_token = true;
            self.token_ttl = module.token_ttl;
            self.secret_key = module.secret_key;
            self.token_check_fail = module.token_check_fail;
            self.warnings.extend(warnings);
            self.warnings.push(format!(
                "the token checks of {} (fastdfs-nginx-module) apply to the built-in HTTP server",
                path.display()
            ));
        }
        let name = ini.string_or("anti_steal_bypass_header_name", "");
        if !name.is_empty() {
            let value = ini.string_or("anti_steal_bypass_header_value", "");
            self.bypass_header = Some((name.to_ascii_lowercase(), value));
        }
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.server_port != 0
    }

    pub fn content_type(&self, file_name: &str) -> &str {
        self.mime
            .lookup(file_name)
            .unwrap_or(&self.default_content_type)
    }
}

/// Extension -> content type, Apache `mime.types` style (5.7): exact, case-sensitive matches.
#[derive(Debug, Clone, Default)]
pub struct MimeTypes {
    map: HashMap<String, String>,
}

impl MimeTypes {
    pub fn parse(text: &str) -> MimeTypes {
        let mut map = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(ty) = words.next() else { continue };
            for ext in words {
                map.insert(ext.trim_end_matches(';').to_string(), ty.to_string());
            }
        }
        MimeTypes { map }
    }

    /// The type for a stored file name: the text after its last `.`, if at most 5 characters.
    pub fn lookup(&self, file_name: &str) -> Option<&str> {
        let (_, ext) = file_name.rsplit_once('.')?;
        if ext.is_empty() || ext.len() > 5 {
            return None;
        }
        self.map.get(ext).map(String::as_str)
    }
}
