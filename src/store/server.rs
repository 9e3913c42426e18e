//! Connecting to a team workspace on a PostgreSQL server: the connection string as libpq reads
//! it (`postgresql://user@host:port/db?sslmode=…`), TLS through rustls, and the password from
//! where libpq users keep it (`PGPASSWORD`, the passfile, or a prompt) — never from the command
//! line or a stored file, so a connection string with a password in it is refused.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use postgres::config::{Host, SslMode as DriverSslMode};

/// Whether a workspace argument names a server rather than a directory.
pub fn is_server_url(text: &str) -> bool {
    // Schemes are case-insensitive: `POSTGRESQL://u@h/db` is a server, never a folder name.
    let starts = |scheme: &str| {
        text.len() >= scheme.len()
            && text.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
    };
    starts("postgresql://") || starts("postgres://")
}

/// Whether `text` is a libpq connection string in key=value form (`host=h dbname=d …`), which
/// vital does not take: it would otherwise be a folder name, password included.
pub fn is_keyword_connection(text: &str) -> bool {
    const KEYS: &[&str] = &[
        "host=",
        "hostaddr=",
        "dbname=",
        "user=",
        "password=",
        "port=",
        "sslmode=",
        "service=",
    ];
    text.split_whitespace().any(|word| {
        let lower = word.to_ascii_lowercase();
        KEYS.iter().any(|k| lower.starts_with(k))
    }) && text.contains('=')
}

/// libpq's `sslmode`, with its meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, unverified; plain otherwise (libpq's default).
    Prefer,
    /// TLS, unverified (verified against the root certificate when one is present, as libpq).
    Require,
    /// TLS, the server's certificate chain verified.
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => anyhow::bail!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ),
        })
    }
}

/// A parsed connection string.
#[derive(Clone)]
pub struct ServerUrl {
    /// The string as given (it holds no password: those are refused).
    text: String,
    config: postgres::Config,
    ssl_mode: SslMode,
    root_cert: Option<String>,
    passfile: Option<PathBuf>,
}

impl std::fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerUrl({})", self.text)
    }
}

impl ServerUrl {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        // The scheme in lower case for the driver (`POSTGRESQL://` is the same server).
        let lowered;
        let text = match text.split_once("://") {
            Some((scheme, rest)) if scheme.bytes().any(|b| b.is_ascii_uppercase()) => {
                lowered = format!("{}://{rest}", scheme.to_ascii_lowercase());
                lowered.as_str()
            }
            _ => text,
        };
        let (base, query) = match text.split_once('?') {
            Some((b, q)) => (b, q),
            None => (text, ""),
        };
        let authority = base
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
            .unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            // `user%3Apw@` is a password too, once decoded.
            if percent_decode(userinfo).contains(':') {
                anyhow::bail!(
                    "the connection string holds a password ({}): passwords never go on the command line or into a file vital reads; use PGPASSWORD, a passfile (~/.pgpass) or the prompt",
                    redact(text)
                );
            }
        }
        let mut ssl_mode = SslMode::Prefer;
        let mut root_cert = None;
        let mut passfile = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            // Keys as the driver reads them: decoded (`pass%77ord`) and in any case (`PASSWORD`).
            let key = percent_decode(key).to_ascii_lowercase();
            match key.as_str() {
                "sslmode" => ssl_mode = SslMode::parse(value)?,
                "sslrootcert" => root_cert = Some(percent_decode(value)),
                "passfile" => passfile = Some(PathBuf::from(percent_decode(value))),
                k if k.contains("password") => anyhow::bail!(
                    "the connection string holds a password (`{k}`): use PGPASSWORD, a passfile (~/.pgpass) or the prompt"
                ),
                _ => kept.push(pair),
            }
        }
        if let Ok(mode) = std::env::var("PGSSLMODE") {
            if !query.contains("sslmode=") {
                ssl_mode = SslMode::parse(&mode).context("PGSSLMODE")?;
            }
        }
        if root_cert.is_none() {
            root_cert = std::env::var("PGSSLROOTCERT").ok();
        }
        let driver_text = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config = postgres::Config::from_str(&driver_text)
            .map_err(|e| anyhow::anyhow!("cannot read connection string {}: {e}", redact(text)))?;
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "postgres".into());
            config.user(&user);
        }
        if config.get_hosts().is_empty() {
            config.host(&std::env::var("PGHOST").unwrap_or_else(|_| "localhost".into()));
        }
        if config.get_ports().is_empty() {
            if let Some(port) = std::env::var("PGPORT").ok().and_then(|p| p.parse().ok()) {
                config.port(port);
            }
        }
        if config.get_dbname().is_none() {
            let db = std::env::var("PGDATABASE")
                .ok()
                .or_else(|| config.get_user().map(str::to_string));
            if let Some(db) = db {
                config.dbname(&db);
            }
        }
        if config.get_application_name().is_none() {
            config.application_name("vital");
        }
        Ok(Self {
            text: text.to_string(),
            config,
            ssl_mode,
            root_cert,
            passfile,
        })
    }

    /// The string as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The role this connection logs in as.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("")
    }

    /// `host:port/db`, for messages and for the local folder of this server's files.
    pub fn label(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{host}:{port}/{}",
            self.config.get_dbname().unwrap_or_default()
        )
    }

    /// The same server and database, logged in as `user`.
    pub fn with_user(&self, user: &str) -> Self {
        let mut other = self.clone();
        other.config.user(user);
        other
    }

    /// Opens a connection, asking for the password on the terminal if the server wants one and
    /// neither PGPASSWORD nor the passfile has it.
    pub fn connect(&self) -> anyhow::Result<postgres::Client> {
        let mut config = self.config.clone();
        if let Some(password) = self.stored_password() {
            config.password(password);
        }
        match self.connect_with(&config) {
            Err(e) if needs_password(&e) && std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                let prompt = format!("password for {} at {}: ", self.user(), self.label());
                let password =
                    rpassword::prompt_password(prompt).context("cannot read the password")?;
                config.password(password);
                self.connect_with(&config)
                    .map_err(|e| connect_error(e, self))
            }
            other => other.map_err(|e| connect_error(e, self)),
        }
    }

    fn connect_with(&self, config: &postgres::Config) -> Result<postgres::Client, postgres::Error> {
        super::db::outside_async(|| self.connect_now(config))
    }

    fn connect_now(&self, config: &postgres::Config) -> Result<postgres::Client, postgres::Error> {
        let mut config = config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        // A query whose client is gone (killed, the link cut) stops on the server too, instead of
        // running on for many minutes; long bulk work is many short statements.
        if config.get_options().is_none() {
            config.options(
                "-c statement_timeout=600000 -c idle_in_transaction_session_timeout=600000",
            );
        }
        match self.ssl_mode {
            SslMode::Disable => {
                config.ssl_mode(DriverSslMode::Disable);
                config.connect(postgres::NoTls)
            }
            mode => {
                config.ssl_mode(if mode == SslMode::Prefer {
                    DriverSslMode::Prefer
                } else {
                    DriverSslMode::Require
                });
                let tls = match tls_config(mode, self.root_cert.as_deref()) {
                    Ok(tls) => tls,
                    // Reported as the driver would report a TLS failure, with our reason.
                    Err(e) => {
                        return config.connect(FailingTls(Arc::new(format!("{e:#}"))));
                    }
                };
                config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
            }
        }
    }

    /// The password from PGPASSWORD, or from the passfile entry matching this connection.
    fn stored_password(&self) -> Option<String> {
        if let Ok(p) = std::env::var("PGPASSWORD") {
            return Some(p);
        }
        let file = self
            .passfile
            .clone()
            .or_else(|| std::env::var_os("PGPASSFILE").map(PathBuf::from))
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            _ => "localhost".into(),
        };
        let port = self
            .config
            .get_ports()
            .first()
            .copied()
            .unwrap_or(5432)
            .to_string();
        passfile_lookup(
            &file,
            [
                &host,
                &port,
                self.config.get_dbname().unwrap_or(""),
                self.user(),
            ],
        )
    }
}

/// The same connection string naming database `db` instead.
pub fn with_dbname(text: &str, db: &str) -> String {
    let (base, query) = match text.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (text, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgresql", base));
    let authority = rest.split('/').next().unwrap_or("");
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A connection string with any password replaced by `***`, for messages.
pub fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let decoded = percent_decode(userinfo);
            match decoded.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => authority.to_string(),
            }
        }
        None => authority.to_string(),
    };
    let tail: Vec<String> = tail
        .split('&')
        .map(|p| {
            let (key, _) = p.split_once('=').unwrap_or((p, ""));
            if percent_decode(key)
                .to_ascii_lowercase()
                .contains("password")
            {
                format!("{key}=***")
            } else {
                p.to_string()
            }
        })
        .collect();
    format!("{scheme}://{authority}{}", tail.join("&"))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(Ok(b)) = text.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq's passfile: lines `host:port:database:user:password`, `*` matching anything, `\` escaping
/// `:` and `\`; the first matching line wins. Like libpq, a file others may read is ignored.
fn passfile_lookup(file: &Path, wanted: [&str; 4]) -> Option<String> {
    let meta = std::fs::metadata(file).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: password file {} has group or world access; permissions should be u=rw (0600) or less — ignored",
                file.display()
            );
            return None;
        }
    }
    if meta.len() > 1 << 20 {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_passfile_line(line);
        if fields.len() != 5 {
            continue;
        }
        let matches = fields[..4]
            .iter()
            .zip(wanted)
            .all(|(field, want)| field == "*" || field == want);
        if matches {
            return Some(fields[4].clone());
        }
    }
    None
}

fn split_passfile_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("one field").push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

fn needs_password(e: &postgres::Error) -> bool {
    let text = e.to_string();
    text.contains("password missing")
}

fn connect_error(e: postgres::Error, url: &ServerUrl) -> anyhow::Error {
    let reason = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    };
    let hint = if reason.contains("password missing") {
        " (set PGPASSWORD, add the server to ~/.pgpass, or run from a terminal to be asked)"
    } else {
        ""
    };
    anyhow::Error::new(Unreachable(format!(
        "cannot connect to {} as {}: {reason}{hint}",
        url.label(),
        url.user()
    )))
}

/// A connection that could not be made (the server is away, or refused the login).
#[derive(Debug)]
pub struct Unreachable(String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// The TLS settings for `mode`: roots from `root_cert` (a PEM file; `system` for the bundled
/// public roots), or `~/.postgresql/root.crt` when it exists.
fn tls_config(mode: SslMode, root_cert: Option<&str>) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?;
    let default_root = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".postgresql/root.crt"))
        .filter(|p| p.is_file());
    let roots = match (root_cert, &default_root) {
        (Some("system"), _) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            Some(roots)
        }
        (Some(file), _) => Some(read_roots(Path::new(file))?),
        (None, Some(file)) => Some(read_roots(file)?),
        (None, None) => None,
    };
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match (mode, roots) {
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => anyhow::bail!(
            "sslmode={} needs a root certificate: give sslrootcert=FILE (or sslrootcert=system), or put it in ~/.postgresql/root.crt",
            if mode == SslMode::VerifyCa { "verify-ca" } else { "verify-full" }
        ),
        (SslMode::Prefer, _) | (SslMode::Require, None) => {
            Arc::new(unverified::AcceptAny(provider.clone()))
        }
        (SslMode::VerifyFull, Some(roots)) => {
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("TLS root certificates")?
        }
        (_, Some(roots)) => Arc::new(unverified::ChainOnly(
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("TLS root certificates")?,
        )),
        (SslMode::Disable, None) => unreachable!("disable never builds TLS"),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn read_roots(file: &Path) -> anyhow::Result<rustls::RootCertStore> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(file)
        .with_context(|| format!("cannot read root certificate {}", file.display()))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("bad certificate in {}", file.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("bad certificate in {}", file.display()))?;
    }
    anyhow::ensure!(!roots.is_empty(), "no certificate in {}", file.display());
    Ok(roots)
}

/// Certificate checks for the modes that do not verify everything (libpq's `prefer`, `require`
/// without a root, `verify-ca`). Signatures on the handshake are still checked, so the channel
/// is encrypted to whoever holds the presented key.
mod unverified {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, Error, SignatureScheme};

    #[derive(Debug)]
    pub struct AcceptAny(pub Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// The chain is verified against the roots; the host name is not (libpq's `verify-ca`).
    #[derive(Debug)]
    pub struct ChainOnly(pub Arc<rustls::client::WebPkiServerVerifier>);

    impl ServerCertVerifier for ChainOnly {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            match self
                .0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Err(Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}

/// A TLS connector that fails every connection with a reason (a root certificate that cannot be
/// read), so the error reaches the user through the driver's own path.
#[derive(Clone)]
struct FailingTls(Arc<String>);

impl<S> postgres::tls::MakeTlsConnect<S> for FailingTls {
    type Stream = postgres::tls::NoTlsStream;
    type TlsConnect = postgres::tls::NoTls;
    type Error = std::io::Error;

    fn make_tls_connect(&mut self, _domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        Err(std::io::Error::other(self.0.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_connection_string_is_refused_and_never_printed() {
        let err = ServerUrl::parse("postgresql://dr_lee:hunter2@db.example:5432/vital")
            .err()
            .unwrap();
        let text = format!("{err:#}");
        assert!(text.contains("PGPASSWORD"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(ServerUrl::parse("postgresql://dr_lee@db/vital?password=x").is_err());
    }

    #[test]
    fn sslmode_and_root_certificate_are_read_and_the_rest_passed_on() {
        let url = ServerUrl::parse(
            "postgresql://dr_lee@db.example:6543/team?sslmode=verify-full&sslrootcert=/tmp/ca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(url.ssl_mode, SslMode::VerifyFull);
        assert_eq!(url.root_cert.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(url.user(), "dr_lee");
        assert_eq!(url.label(), "db.example:6543/team");
        assert!(ServerUrl::parse("postgresql://a@b/c?sslmode=sometimes").is_err());
    }

    #[test]
    fn verify_modes_without_a_root_certificate_say_what_is_missing() {
        let err = tls_config(SslMode::VerifyFull, None);
        if Path::new(&std::env::var("HOME").unwrap_or_default())
            .join(".postgresql/root.crt")
            .is_file()
        {
            return;
        }
        let text = format!("{:#}", err.err().unwrap());
        assert!(text.contains("sslrootcert"), "{text}");
    }

    #[test]
    fn passfile_entries_match_with_wildcards_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:*:no\n127.0.0.1:*:team:dr_lee:s3cr\\:et\n*:*:*:*:fallback\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(
            passfile_lookup(&file, ["127.0.0.1", "5433", "team", "dr_lee"]).as_deref(),
            Some("s3cr:et")
        );
        assert_eq!(
            passfile_lookup(&file, ["127.0.0.1", "5433", "team", "ben"]).as_deref(),
            Some("fallback")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(passfile_lookup(&file, ["x", "1", "y", "z"]), None);
        }
    }

    /// Against the test server's TLS (a throwaway CA, see tools/test_postgres.sh): each sslmode
    /// does what libpq's does, and a certificate that does not verify is refused.
    #[test]
    fn every_sslmode_connects_as_libpq_would_and_a_wrong_root_is_refused() {
        let Some(admin) = crate::store::test_support::test_server() else {
            return;
        };
        let Ok(ca) = std::env::var("VITAL_TEST_PG_CA") else {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "under CI the test server has TLS (VITAL_TEST_PG_CA)"
            );
            eprintln!("skipped: the test server has no TLS (VITAL_TEST_PG_CA)");
            return;
        };
        let base = admin.split('?').next().unwrap().to_string();
        let encrypted = |query: &str| -> anyhow::Result<bool> {
            let mut client = ServerUrl::parse(&format!("{base}?{query}"))?.connect()?;
            Ok(client
                .query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )?
                .get(0))
        };
        assert!(!encrypted("sslmode=disable").unwrap());
        assert!(encrypted("sslmode=prefer").unwrap());
        assert!(encrypted("sslmode=require").unwrap());
        assert!(encrypted(&format!("sslmode=verify-ca&sslrootcert={ca}")).unwrap());
        assert!(encrypted(&format!("sslmode=verify-full&sslrootcert={ca}")).unwrap());
        let by_name = base.replace("127.0.0.1", "localhost");
        let mut client =
            ServerUrl::parse(&format!("{by_name}?sslmode=verify-full&sslrootcert={ca}"))
                .unwrap()
                .connect()
                .unwrap();
        client.simple_query("SELECT 1").unwrap();
        // The public roots do not vouch for the test CA's certificate.
        let err = encrypted("sslmode=verify-full&sslrootcert=system").unwrap_err();
        assert!(format!("{err:#}").contains("certificate"), "{err:#}");
        let err = encrypted("sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem").unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/ca.pem"),
            "{err:#}"
        );
    }

    #[test]
    fn redaction_hides_passwords_in_both_places() {
        assert_eq!(
            redact("postgresql://u:pw@h:1/db?sslmode=require&password=pw"),
            "postgresql://u:***@h:1/db?sslmode=require&password=***"
        );
        assert_eq!(
            redact("postgresql://u%3Apw@h/db?x=1&PASSWORD=pw&pass%77ord=pw&sslpassword=k"),
            "postgresql://u:***@h/db?x=1&PASSWORD=***&pass%77ord=***&sslpassword=***"
        );
    }

    #[test]
    fn every_spelling_of_a_password_is_refused_without_echoing_it() {
        for url in [
            "postgresql://u@h/db?pass%77ord=s3cr3t",
            "postgresql://u@h/db?PASSWORD=s3cr3t",
            "postgresql://u@h/db?sslpassword=s3cr3t",
            "postgresql://u%3As3cr3t@h/db",
            "POSTGRESQL://u:s3cr3t@h/db",
        ] {
            let err = ServerUrl::parse(url)
                .map(|_| ())
                .expect_err(url)
                .to_string();
            assert!(err.contains("password"), "{url}: {err}");
            assert!(!err.contains("s3cr3t"), "{url} echoed: {err}");
        }
        assert!(is_server_url("POSTGRESQL://u@h/db"));
        assert!(is_server_url("Postgres://u@h/db"));
        assert!(is_keyword_connection("host=h dbname=d password=s3cr3t"));
        assert!(!is_keyword_connection("/data/my=folder"));
    }
}
