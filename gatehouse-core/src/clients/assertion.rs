//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): an app
//! registered with a JWK Set (`jwks`) or the https URL of one (`jwks_uri`, fetched under the
//! same rules as metadata documents) proves itself with a JWT it signed: `iss` = `sub` = its
//! client id, `aud` this server (the issuer, the token endpoint or the endpoint called), `exp`
//! at most five minutes ahead, a `jti` accepted once (`used_jtis`, shared by every instance).
//! ES256, RS256 and EdDSA; the key decides the algorithm (`none`, HMAC and a key of another
//! type are refused). A `jwks_uri` is read again when an assertion names a key it does not
//! hold (at most every 30 s), so apps rotate keys by publishing the new one first.

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};

use crate::jwt::dpop::jwk_fits;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::clients::Client;
use crate::db::schema::used_jtis;
use crate::db::{DbConn, DbError};
use crate::oauth::error::OAuthError;
use crate::state::AppState;

/// RFC 7523 §2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub use crate::clients::PRIVATE_KEY_JWT as METHOD;
pub use crate::clients::jwks::{SIGNING_ALGS, algorithm, validate_jwks};
/// The furthest ahead an assertion's `exp` may be.
const MAX_LIFETIME: i64 = 300;
const LEEWAY: u64 = 30;
/// How long a fetched JWK Set is used, and how soon an unknown `kid` may fetch it again.
use crate::cache::jwks::JWKS_FRESH;
const REFETCH_AFTER: chrono::Duration = chrono::Duration::seconds(30);

pub use crate::cache::jwks::JwksCache;

/// The client id an assertion claims (`sub`, else `iss`), read before anything is verified
/// only to know which app's keys verify it.
pub fn claimed_client(assertion: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Claimed {
        sub: Option<String>,
        iss: Option<String>,
    }
    let claimed: Claimed = jsonwebtoken::dangerous::insecure_decode_claims(assertion).ok()?;
    claimed
        .sub
        .or(claimed.iss)
        .filter(|s| !s.is_empty() && s.len() <= 300)
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    sub: String,
    exp: i64,
    jti: String,
}

fn refused(why: &str) -> OAuthError {
    OAuthError::InvalidClient(format!("The client assertion is not valid: {why}"))
}

/// The app's keys: registered inline, or fetched from its `jwks_uri` (again when `kid` is
/// not among them and the last fetch is older than 30 s).
async fn keys_of(
    state: &AppState,
    client: &Client,
    kid: Option<&str>,
) -> Result<Arc<JwkSet>, OAuthError> {
    let options = client.options();
    if let Some(inline) = &options.jwks {
        return serde_json::from_value(inline.clone())
            .map(Arc::new)
            .map_err(|_| refused("the app's registered keys cannot be read"));
    }
    let Some(uri) = options.jwks_uri.as_deref() else {
        return Err(refused("the app registered no keys"));
    };
    let knows = |set: &JwkSet| kid.is_none_or(|k| set.find(k).is_some());
    let cached = state.jwks_cache.get(uri);
    let now = state.now();
    if let Some((at, set)) = &cached
        && now - *at < JWKS_FRESH
        && (knows(set) || now - *at < REFETCH_AFTER)
    {
        return Ok(set.clone());
    }
    match crate::clients::documents::fetch_keys(state, uri).await {
        Ok(value) => {
            let set = Arc::new(validate_jwks(&value).map_err(|why| {
                log::info!("the jwks_uri of {} is not usable: {why}", client.id);
                refused("the keys at the app's jwks_uri cannot be used")
            })?);
            state.jwks_cache.put(uri, set.clone(), now);
            Ok(set)
        }
        Err(e) => {
            log::info!("fetching the jwks_uri of {}: {}", client.id, e.0);
            // A stale set still verifies while the app's server is down.
            cached
                .map(|(_, set)| set)
                .ok_or_else(|| refused("the app's jwks_uri could not be fetched"))
        }
    }
}

/// Verify `assertion` for `client` at the endpoint `endpoint` (its absolute URL), and spend
/// its `jti`.
pub async fn verify(
    state: &AppState,
    client: &Client,
    assertion: &str,
    endpoint: &str,
) -> Result<(), OAuthError> {
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|_| refused("it is not a signed JWT"))?;
    let alg = match header.alg {
        a @ (Algorithm::ES256 | Algorithm::RS256 | Algorithm::EdDSA) => a,
        _ => return Err(refused("only ES256, RS256 and EdDSA are accepted")),
    };
    let set = keys_of(state, client, header.kid.as_deref()).await?;
    let candidates: Vec<&Jwk> = match header.kid.as_deref() {
        Some(kid) => set.find(kid).into_iter().collect(),
        None => set.keys.iter().collect(),
    };
    let issuer = &state.settings.issuer;
    let token_endpoint = format!("{issuer}/oauth/token");
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY;
    validation.set_issuer(&[client.id.as_str()]);
    validation.set_audience(&[issuer.as_str(), token_endpoint.as_str(), endpoint]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    // Expiry against the server's clock (checked below), not the process's.
    validation.validate_exp = false;
    let mut verified = None;
    for jwk in candidates.into_iter().filter(|k| jwk_fits(k, alg)) {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
            Ok(data) => {
                verified = Some(data.claims);
                break;
            }
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidSignature => continue,
                    ErrorKind::ExpiredSignature => return Err(refused("it has expired")),
                    ErrorKind::InvalidAudience => {
                        return Err(refused("its aud is not this server"));
                    }
                    ErrorKind::InvalidIssuer => return Err(refused("its iss is not the client")),
                    _ => return Err(refused("its claims are not acceptable")),
                }
            }
        }
    }
    let claims = verified.ok_or_else(|| refused("no key the app registered signed it"))?;
    if claims.sub != client.id {
        return Err(refused("its sub is not the client"));
    }
    let now = state.now();
    let now_s = now.and_utc().timestamp();
    if claims.exp + (LEEWAY as i64) < now_s {
        return Err(refused("it has expired"));
    }
    if claims.exp > now_s + MAX_LIFETIME + LEEWAY as i64 {
        return Err(refused("its exp is more than five minutes ahead"));
    }
    if claims.jti.is_empty() || claims.jti.len() > 200 {
        return Err(refused("its jti is missing or too long"));
    }
    let id = format!("pkj:{}:{}", client.id, claims.jti);
    let until = chrono::DateTime::from_timestamp(claims.exp + LEEWAY as i64, 0)
        .map_or(now, |t| t.naive_utc());
    if !state.db(move |c| spend_jti(c, &id, until)).await? {
        return Err(refused("it was used before (its jti is spent)"));
    }
    Ok(())
}

/// Record a JWT id as spent until `until`: `false` when it was spent already.
pub fn spend_jti(conn: &mut DbConn, id: &str, until: NaiveDateTime) -> Result<bool, DbError> {
    let inserted = crate::db::serialized_write(conn, |conn| {
        diesel::insert_into(used_jtis::table)
            .values((used_jtis::id.eq(id), used_jtis::expires_at.eq(until)))
            .execute(conn)
    })
    .map_err(DbError::from);
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Spent assertion ids whose JWT expired before `cutoff` (it would be refused as expired anyway) (the janitor deletes them in batches).
pub fn used_jtis_past(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(used_jtis::table
        .filter(used_jtis::expires_at.lt(cutoff))
        .select(used_jtis::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these rows of `used_jtis`.
pub fn delete_used_jtis(conn: &mut DbConn, ids: &[String]) -> Result<usize, diesel::result::Error> {
    diesel::delete(used_jtis::table.filter(used_jtis::id.eq_any(ids))).execute(conn)
}
