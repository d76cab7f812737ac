//! `validation.verifier = "gost"`: signatures verified in the process with the GOST
//! backend (`egisz-gost`), chained to the configured trusted CAs at the document's creation
//! time (and at the signature's `signingTime`), revocation checked against each CA's CRL.
//!
//! The edge: reading the trust directory, fetching CRLs (through an optional proxy,
//! bounded in size and time, cached until their `nextUpdate`, refreshed ahead of it), the
//! clock. What the findings mean is decided in [`crate::judge`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use egisz_contract::Failure;
use egisz_gost::{Certificate, Crl, Digest, Gost, TrustStore};
use egisz_semd::{DigestAlgorithm, ParsedSignature, SignatureVerifier, Violation, rules};

use crate::judge::{self, Depth, Revocation, RevocationPolicy};

/// The most files read from a trust directory, and the largest file.
pub const MAX_TRUST_FILES: usize = 10_000;
pub const MAX_TRUST_FILE_BYTES: u64 = 1024 * 1024;
/// How long a CRL without `nextUpdate` is used after its `thisUpdate`.
pub const CRL_MAX_AGE_WITHOUT_NEXT_UPDATE: i64 = 24 * 3600;
/// How long after a failed fetch the same address is not asked again (a dead CA server
/// must not make every document wait for its timeout).
pub const CRL_RETRY_AFTER_FAILURE: i64 = 60;
/// CRLs are fetched again this long before their `nextUpdate`.
pub const CRL_REFRESH_AHEAD: i64 = 3600;

/// How CRLs are fetched.
#[derive(Debug, Clone)]
pub struct CrlSettings {
    /// The whole fetch of one CRL, connecting included (a server that trickles is cut here).
    pub timeout: Duration,
    /// The largest CRL read; a bigger one is not used.
    pub max_bytes: usize,
    /// The most CRLs held (one per CA address).
    pub max_lists: usize,
    /// An outbound HTTP proxy for CRL fetches.
    pub proxy: Option<url::Url>,
    /// CRLs held locally (DER or PEM), used for a certificate that names no CRL address or
    /// whose addresses fail: the sandbox CA's standing list, or lists an operator mirrors
    /// for CAs it cannot reach.
    pub local: Vec<Vec<u8>>,
}

impl Default for CrlSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_bytes: 64 * 1024 * 1024,
            max_lists: 1000,
            proxy: None,
            local: Vec::new(),
        }
    }
}

/// Where the trusted CAs come from: any of a directory, the ministry's list of accredited
/// CAs as last fetched, and certificates given in code.
#[derive(Debug, Clone, Default)]
pub struct TrustSource {
    /// Every PEM or DER certificate file in a directory (not recursive).
    pub dir: Option<PathBuf>,
    /// The ministry's list ([`crate::tsl`]) as last fetched: the certificates of the CAs
    /// whose accreditation is in force. Absent until the first fetch.
    pub list_file: Option<PathBuf>,
    /// Certificates given by the caller (the sandbox's test CA), DER.
    pub fixed: Vec<Vec<u8>>,
}

impl TrustSource {
    pub fn directory(dir: PathBuf) -> Self {
        Self { dir: Some(dir), ..Self::default() }
    }

    pub fn fixed(certificates: Vec<Vec<u8>>) -> Self {
        Self { fixed: certificates, ..Self::default() }
    }
}

/// The trust store and what came with it.
pub struct LoadedTrust {
    pub store: TrustStore,
    /// The CRL addresses the ministry's list gives for each CA certificate (by
    /// fingerprint): asked when a certificate names none of its own.
    pub crl_hints: HashMap<String, Vec<String>>,
    /// One line per file that could not be read, in English, for the operator's log.
    pub skipped: Vec<String>,
}

/// Reads the trusted certificates. No certificate at all is an error: a store that trusts
/// nobody refuses every document.
pub fn load_trust(gost: &'static Gost, source: &TrustSource) -> Result<LoadedTrust, String> {
    let mut certificates = Vec::new();
    let mut skipped = Vec::new();
    let mut crl_hints = HashMap::new();
    for der in &source.fixed {
        certificates.push(Certificate::from_der(gost, der).map_err(|e| e.to_string())?);
    }
    if let Some(dir) = &source.dir {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        if paths.len() > MAX_TRUST_FILES {
            return Err(format!("{}: more than {MAX_TRUST_FILES} files", dir.display()));
        }
        for path in paths.iter().filter(|p| p.is_file()) {
            match read_certificates(gost, path) {
                Ok(found) => certificates.extend(found),
                Err(e) => skipped.push(format!("{}: {e}", path.display())),
            }
        }
    }
    if let Some(file) = &source.list_file {
        match std::fs::read(file) {
            Ok(bytes) => {
                let list = crate::tsl::parse(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
                for (der, urls) in list.accredited_certificates() {
                    match Certificate::from_der(gost, der) {
                        // A self-signed root (the head CA's) is no accredited CA's own
                        // certificate: trusted as an anchor, it would let a CA whose
                        // accreditation ended chain to it.
                        Ok(c) if c.is_root() => {
                            skipped.push(format!("{}: a self-signed root in the list, not trusted", file.display()));
                        }
                        Ok(c) => {
                            crl_hints.insert(c.fingerprint(), urls.to_vec());
                            certificates.push(c);
                        }
                        Err(e) => skipped.push(format!("{}: a listed certificate: {e}", file.display())),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                skipped.push(format!("{}: not fetched yet", file.display()));
            }
            Err(e) => return Err(format!("{}: {e}", file.display())),
        }
    }
    if certificates.is_empty() {
        let from: Vec<String> =
            source.dir.iter().chain(source.list_file.iter()).map(|p| p.display().to_string()).collect();
        return Err(format!("no CA certificate (PEM or DER) in {}", from.join(" or ")));
    }
    let store = TrustStore::new(gost, certificates).map_err(|e| e.to_string())?;
    Ok(LoadedTrust { store, crl_hints, skipped })
}

/// The longest fetch of the ministry's list (tens of megabytes).
pub const LIST_FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Fetches the ministry's list from one address into one file ([`fetch_list`]).
pub struct ListFetcher {
    client: reqwest::Client,
    pub url: url::Url,
    pub file: PathBuf,
}

impl ListFetcher {
    /// Through `proxy` when given, each fetch bounded by [`LIST_FETCH_TIMEOUT`].
    pub fn new(url: url::Url, file: PathBuf, proxy: Option<&url::Url>) -> Result<Self, String> {
        let client = egisz_http::build_client(&egisz_http::ClientSettings {
            timeout: LIST_FETCH_TIMEOUT,
            user_agent: concat!("egisz-gateway/", env!("CARGO_PKG_VERSION")),
            extra_ca_bundle: None,
            proxy,
        })
        .map_err(|e| e.to_string())?;
        Ok(Self { client, url, file })
    }

    /// One fetch: how many certificates the list kept now trusts.
    pub async fn fetch(&self) -> Result<usize, String> {
        fetch_list(&self.client, &self.url, &self.file).await
    }
}

/// Fetches the ministry's list from `url` and keeps it at `file` when it parses and names
/// at least one CA in force (written beside, synced, then renamed: a failed fetch never
/// leaves a broken or empty list in place). Returns how many certificates it trusts.
pub async fn fetch_list(client: &reqwest::Client, url: &url::Url, file: &Path) -> Result<usize, String> {
    let sent = client.get(url.clone()).send().await;
    let bytes = egisz_http::answer_body(sent, "реестр аккредитованных УЦ", crate::tsl::MAX_TSL_BYTES)
        .await
        .map_err(|f| f.reason().to_owned())?;
    let (bytes, count) = tokio::task::spawn_blocking(move || {
        let list = crate::tsl::parse(&bytes)?;
        let count = list.accredited_certificates().count();
        if count == 0 {
            return Err("the list names no CA in force".to_owned());
        }
        Ok((bytes, count))
    })
    .await
    .map_err(|_| "reading the list was cut short".to_owned())??;
    let tmp = file.with_extension("partial");
    let write = || -> std::io::Result<()> {
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    };
    write().map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(count)
}

fn read_certificates(gost: &'static Gost, path: &Path) -> Result<Vec<Certificate>, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_TRUST_FILE_BYTES {
        return Err(format!("larger than {MAX_TRUST_FILE_BYTES} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    Certificate::from_file_bytes(gost, &bytes).map_err(|e| format!("not a certificate: {e}"))
}

struct CachedCrl {
    /// `None` after a failed fetch, with why.
    crl: Result<Arc<Crl>, String>,
    this_update: i64,
    next_update: Option<i64>,
    fetched_at: i64,
}

/// CRLs by address.
struct CrlCache {
    client: reqwest::Client,
    settings: CrlSettings,
    lists: Mutex<HashMap<String, CachedCrl>>,
    /// One fetch per address at a time; others wait for its result.
    fetching: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The trusted CAs in force, and the ministry's CRL addresses for them.
struct Trust {
    store: Arc<TrustStore>,
    crl_hints: HashMap<String, Vec<String>>,
}

/// The GOST verifier.
pub struct GostVerifier {
    gost: &'static Gost,
    trust: RwLock<Arc<Trust>>,
    source: TrustSource,
    crls: CrlCache,
    /// [`CrlSettings::local`], parsed.
    local_crls: Vec<Crl>,
    policy: RevocationPolicy,
}

impl std::fmt::Debug for GostVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GostVerifier").field("policy", &self.policy).finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    Utc::now().timestamp()
}

impl GostVerifier {
    /// Loads the engine and the trust store; fails with a message naming what to fix.
    pub fn new(source: TrustSource, policy: RevocationPolicy, crl: CrlSettings) -> Result<Self, String> {
        let gost = Gost::load().map_err(|e| e.to_string())?;
        let loaded = load_trust(gost, &source)?;
        for line in &loaded.skipped {
            tracing::warn!(file = %line, "trusted CA directory: file skipped");
        }
        let client = egisz_http::build_client(&egisz_http::ClientSettings {
            timeout: crl.timeout,
            user_agent: concat!("egisz-gateway/", env!("CARGO_PKG_VERSION")),
            extra_ca_bundle: None,
            proxy: crl.proxy.as_ref(),
        })
        .map_err(|e| e.to_string())?;
        let local_crls = crl
            .local
            .iter()
            .map(|bytes| Crl::parse(gost, bytes).map_err(|e| format!("a local CRL: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            gost,
            local_crls,
            trust: RwLock::new(Arc::new(Trust { store: Arc::new(loaded.store), crl_hints: loaded.crl_hints })),
            source,
            crls: CrlCache {
                client,
                settings: crl,
                lists: Mutex::new(HashMap::new()),
                fetching: tokio::sync::Mutex::new(HashMap::new()),
            },
            policy,
        })
    }

    /// The loaded engine.
    pub fn gost(&self) -> &'static Gost {
        self.gost
    }

    fn trust(&self) -> Arc<Trust> {
        self.trust.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The trust store in force.
    pub fn trust_store(&self) -> Arc<TrustStore> {
        self.trust().store.clone()
    }

    /// How many CA certificates are trusted now.
    pub fn trusted(&self) -> usize {
        self.trust().store.anchors().len()
    }

    /// Reads the trust source again; the store in force is kept when that fails.
    pub fn reload_trust(&self) -> Result<usize, String> {
        let loaded = load_trust(self.gost, &self.source)?;
        let n = loaded.store.anchors().len();
        let trust = Trust { store: Arc::new(loaded.store), crl_hints: loaded.crl_hints };
        *self.trust.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(trust);
        Ok(n)
    }

    /// Fetches again every CRL due within [`CRL_REFRESH_AHEAD`] (or whose last fetch
    /// failed), so that documents seldom wait for one. Returns how many were fetched.
    pub async fn refresh_crls(&self) -> usize {
        let now = now_secs();
        let due: Vec<String> = {
            let lists = self.crls.lists.lock().unwrap_or_else(|p| p.into_inner());
            lists
                .iter()
                .filter(|(_, c)| match &c.crl {
                    Ok(_) => {
                        c.next_update
                            .unwrap_or(c.this_update + CRL_MAX_AGE_WITHOUT_NEXT_UPDATE)
                            .saturating_sub(CRL_REFRESH_AHEAD)
                            <= now
                    }
                    Err(_) => now - c.fetched_at >= CRL_RETRY_AFTER_FAILURE,
                })
                .map(|(u, _)| u.clone())
                .collect()
        };
        for url in &due {
            self.fetch(url, now).await;
        }
        due.len()
    }

    async fn fetch(&self, url: &str, now: i64) {
        let lock = {
            let mut fetching = self.crls.fetching.lock().await;
            fetching.entry(url.to_owned()).or_default().clone()
        };
        let _one = lock.lock().await;
        // Another document fetched it while this one waited: nothing to do.
        if self.crls.lists.lock().unwrap_or_else(|p| p.into_inner()).get(url).is_some_and(|c| c.fetched_at >= now) {
            return;
        }
        let body = match url::Url::parse(url) {
            Ok(u) => {
                let sent = self.crls.client.get(u).send().await;
                egisz_http::answer_body(sent, "сервер списков отзыва", self.crls.settings.max_bytes)
                    .await
                    .map_err(|f| f.reason().to_owned())
            }
            Err(_) => Err("адрес CRL не разобран".to_owned()),
        };
        let gost = self.gost;
        let parsed = match body {
            Ok(bytes) => tokio::task::spawn_blocking(move || Crl::parse(gost, &bytes).map_err(|e| e.0))
                .await
                .unwrap_or_else(|_| Err("разбор CRL прерван".to_owned()))
                .map_err(|e| format!("CRL не разобран: {e}")),
            Err(e) => Err(e),
        };
        let entry = match parsed {
            Ok(crl) => CachedCrl {
                this_update: crl.this_update().unwrap_or(i64::MAX),
                next_update: crl.next_update().ok().flatten(),
                crl: Ok(Arc::new(crl)),
                fetched_at: now,
            },
            Err(why) => {
                tracing::warn!(url = %redacted(url), why = %why, "CRL not fetched");
                let mut lists = self.crls.lists.lock().unwrap_or_else(|p| p.into_inner());
                // A list fetched before stays while it is current: only its absence is noted.
                if let Some(old) = lists.get_mut(url)
                    && old.crl.is_ok()
                {
                    old.fetched_at = now;
                    return;
                }
                CachedCrl { crl: Err(why), this_update: 0, next_update: None, fetched_at: now }
            }
        };
        let mut lists = self.crls.lists.lock().unwrap_or_else(|p| p.into_inner());
        // Never an older list in place of a newer one (a replayed CRL would hide revocations).
        if let (Some(old), Ok(_)) = (lists.get_mut(url), &entry.crl)
            && old.crl.is_ok()
            && entry.this_update < old.this_update
        {
            tracing::warn!(url = %redacted(url), "an older CRL than the one held was served; the held one is kept");
            old.fetched_at = now;
            return;
        }
        if lists.len() >= self.crls.settings.max_lists && !lists.contains_key(url) {
            // Full: the list fetched longest ago makes room.
            if let Some(oldest) = lists.iter().min_by_key(|(_, c)| c.fetched_at).map(|(u, _)| u.clone()) {
                lists.remove(&oldest);
            }
        }
        lists.insert(url.to_owned(), entry);
    }

    /// A current CRL at `url`, fetched when there is none (or the last is stale).
    async fn crl(&self, url: &str, now: i64) -> Result<Arc<Crl>, String> {
        for attempt in 0..2 {
            {
                let lists = self.crls.lists.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(c) = lists.get(url) {
                    match &c.crl {
                        Ok(crl)
                            if judge::crl_current(
                                c.this_update,
                                c.next_update,
                                now,
                                CRL_MAX_AGE_WITHOUT_NEXT_UPDATE,
                            ) =>
                        {
                            return Ok(crl.clone());
                        }
                        Ok(_) if attempt == 1 || now - c.fetched_at < CRL_RETRY_AFTER_FAILURE => {
                            return Err("список отзыва устарел (nextUpdate прошёл)".to_owned());
                        }
                        Err(why) if attempt == 1 || now - c.fetched_at < CRL_RETRY_AFTER_FAILURE => {
                            return Err(why.clone());
                        }
                        _ => {}
                    }
                }
            }
            if attempt == 0 {
                self.fetch(url, now).await;
            }
        }
        Err("список отзыва не получен".to_owned())
    }

    /// The revocation status of `certificate`, whose issuer is `issuer`.
    async fn revocation(&self, certificate: &Certificate, issuer: &Certificate, now: i64) -> Revocation {
        let mut urls = certificate.crl_urls();
        if urls.is_empty() {
            // The ministry's list names the CA's CRL addresses: asked for a certificate that
            // names none of its own.
            urls = self.trust().crl_hints.get(&issuer.fingerprint()).cloned().unwrap_or_default();
        }
        let local = self.local_crls.iter().find(|crl| {
            crl.issued_by(issuer)
                && crl.this_update().is_ok_and(|t| {
                    judge::crl_current(t, crl.next_update().ok().flatten(), now, CRL_MAX_AGE_WITHOUT_NEXT_UPDATE)
                })
        });
        if urls.is_empty() {
            if let Some(crl) = local {
                return revoked_or_good(crl, certificate);
            }
            return Revocation::Unknown {
                why: "в сертификате нет адреса списка отзыва".to_owned()
            };
        }
        let mut whys = Vec::new();
        for url in urls.iter().take(4) {
            match self.crl(url, now).await {
                Ok(crl) => {
                    // The issuer's signature over a list of megabytes, and the first lookup
                    // (which sorts it), are CPU work: off the async threads.
                    let (certificate, issuer) = (certificate.clone(), issuer.clone());
                    let status = tokio::task::spawn_blocking(move || {
                        crl.issued_by(&issuer).then(|| revoked_or_good(&crl, &certificate))
                    })
                    .await
                    .unwrap_or(None);
                    match status {
                        Some(status) => return status,
                        None => whys.push("список отзыва подписан не издателем сертификата".to_owned()),
                    }
                }
                Err(why) => whys.push(why),
            }
        }
        // The addresses failed: a list held locally for the issuer stands in.
        if let Some(crl) = local {
            return revoked_or_good(crl, certificate);
        }
        Revocation::Unknown { why: whys.join("; ") }
    }
}

/// The signature value and the chain to `trust` at the creation time and the signing time:
/// the chain, signer first, or the first finding. CPU only, no I/O (the REMD emulator uses
/// it as it is; the verifier on a blocking thread).
pub fn check_value_and_chain(
    gost: &'static Gost,
    trust: &TrustStore,
    signature: &ParsedSignature,
    created: DateTime<FixedOffset>,
) -> Result<Vec<Certificate>, Violation> {
    const SIGNER_INFO: &str = "/ContentInfo/SignedData/signerInfos/SignerInfo";
    let refuse = |rule: &'static str, message: String| {
        let path = match rule {
            rules::UNKNOWN_ALGORITHM => format!("{SIGNER_INFO}/digestAlgorithm"),
            _ => format!("{SIGNER_INFO}/signature"),
        };
        Violation::new(rule, path, message)
    };
    let leaf = Certificate::from_der(gost, signature.certificate.der()).map_err(|e| {
        refuse(rules::SIGNATURE_VERIFICATION_ERROR, format!("ключ сертификата подписи не разобран: {e}"))
    })?;
    let digest = match signature.digest_algorithm {
        DigestAlgorithm::Streebog256 => Digest::Streebog256,
        DigestAlgorithm::Streebog512 => Digest::Streebog512,
        _ => {
            return Err(refuse(
                rules::UNKNOWN_ALGORITHM,
                "подпись не по ГОСТ Р 34.11-2012: значение не проверяется".to_owned(),
            ));
        }
    };
    let valid = egisz_gost::verify_signature_value(
        gost,
        &leaf,
        digest,
        signature.signed_attributes(),
        signature.signature_value(),
    )
    .map_err(|e| refuse(rules::SIGNATURE_VERIFICATION_ERROR, format!("ключ подписи не применим: {e}")))?;
    if !valid {
        return Err(refuse(
            rules::SIGNATURE_VERIFICATION_ERROR,
            "значение подписи неверно: подпись не сделана ключом этого сертификата".to_owned(),
        ));
    }
    let untrusted = offered_path(gost, signature);
    let mut times = vec![(created.timestamp(), "дату создания документа")];
    if let Some(signed) = signature.signing_time
        && signed.timestamp() != created.timestamp()
    {
        times.push((signed.timestamp(), "время подписания"));
    }
    let mut chain = Vec::new();
    for (at, what) in times {
        chain = trust.chain(&leaf, &untrusted, at).map_err(|e| judge::chain_violation(&e, what))?;
    }
    Ok(chain)
}

/// The container's other certificates (the CA path the signer offers); one that does not
/// parse is left out, and the chain is built without it.
fn offered_path(gost: &'static Gost, signature: &ParsedSignature) -> Vec<Certificate> {
    signature.other_certificates.iter().filter_map(|der| Certificate::from_der(gost, der).ok()).collect()
}

fn revoked_or_good(crl: &Crl, certificate: &Certificate) -> Revocation {
    match crl.revoked_at(certificate) {
        Ok(Some(at)) => Revocation::Revoked { at },
        Ok(None) => Revocation::Good,
        Err(e) => Revocation::Unknown { why: format!("запись CRL не разобрана: {e}") },
    }
}

fn redacted(url: &str) -> String {
    url::Url::parse(url).map(|u| egisz_http::redacted_url(&u)).unwrap_or_else(|_| "(unparsable)".to_owned())
}

#[async_trait::async_trait]
impl SignatureVerifier for GostVerifier {
    async fn verify(
        &self,
        signature: &ParsedSignature,
        _document: &[u8],
        created: DateTime<FixedOffset>,
    ) -> Result<Vec<Violation>, Failure> {
        let trust = self.trust_store();
        let gost = self.gost;
        let owned = signature.clone();
        // A check that did not finish is no pass: the signature is refused as not verified.
        let chain = tokio::task::spawn_blocking(move || check_value_and_chain(gost, &trust, &owned, created))
            .await
            .unwrap_or_else(|_| {
                Err(Violation::new(
                    rules::SIGNATURE_VERIFICATION_ERROR,
                    "/ContentInfo/SignedData/signerInfos/SignerInfo/signature",
                    "подпись не удалось проверить",
                ))
            });
        match chain {
            Ok(chain) => self.revocation_of(&chain).await,
            Err(violation) => Ok(vec![violation]),
        }
    }
}

impl GostVerifier {
    /// Revocation of a chain (signer first, trusted CA last), as REMD judges it at the time
    /// of its check: now. The trusted CA itself is not checked.
    async fn revocation_of(&self, chain: &[Certificate]) -> Result<Vec<Violation>, Failure> {
        let now = now_secs();
        // However many links and addresses, one document waits at most this long.
        let deadline = tokio::time::Instant::now() + self.crls.settings.timeout * 2;
        let mut statuses: Vec<(Depth, Revocation)> = Vec::new();
        for (depth, pair) in chain.windows(2).enumerate() {
            let status = tokio::time::timeout_at(deadline, self.revocation(&pair[0], &pair[1], now))
                .await
                .unwrap_or_else(|_| Revocation::Unknown {
                    why: "списки отзыва не получены вовремя".to_owned()
                });
            statuses.push((depth, status));
        }
        judge::revocation(&statuses, self.policy)
    }

    /// Revocation only, for a signature whose value and chain were checked already
    /// ([`check_value_and_chain`], as the REMD emulator does): the chain is built again
    /// (remembered by the trust store, so no signature is verified twice), then each link
    /// against its CRL. A signature whose chain does not build has nothing to check here.
    pub async fn check_revocation(
        &self,
        signature: &ParsedSignature,
        created: DateTime<FixedOffset>,
    ) -> Result<Vec<Violation>, Failure> {
        let Ok(leaf) = Certificate::from_der(self.gost, signature.certificate.der()) else { return Ok(Vec::new()) };
        match self.trust_store().chain(&leaf, &offered_path(self.gost, signature), created.timestamp()) {
            Ok(chain) => self.revocation_of(&chain).await,
            Err(_) => Ok(Vec::new()),
        }
    }
}
