//! Attenuation: whatever a caller mints or changes is never more than the caller holds, in
//! every dimension — kind, scopes, mode, expiry, IP allowlist, rate limit. `bounds` says what
//! the caller holds; `admits` says whether a credential fits inside it; `inherit` fills what a
//! new credential's request left open from the caller (allowlist, expiry, rate limit).

use chrono::NaiveDateTime;
use ipnet::IpNet;

use super::{Caller, Via};
use crate::api_keys::format::{Kind, Mode};
use crate::scopes::ScopeSet;
use gatehouse_verify::restrictions::Restrictions;

/// A key as attenuation weighs it (an existing one, or one about to be minted).
#[derive(Debug, Clone, Copy)]
pub struct KeyShape<'a> {
    pub kind: Kind,
    pub mode: Mode,
    pub scopes: &'a ScopeSet,
    pub expires_at: Option<NaiveDateTime>,
    /// Empty: usable from anywhere.
    pub nets: &'a [IpNet],
    pub rate_limit_per_minute: Option<i64>,
    pub restrictions: &'a Restrictions,
}

/// The most a caller's credential allows (`None`: no bound in that dimension).
#[derive(Debug, Clone, Copy)]
pub struct Bounds<'a> {
    /// `Some`: only restricted keys within these scopes.
    pub scopes: Option<&'a ScopeSet>,
    /// `Some(Test)`: test mode only.
    pub mode: Option<Mode>,
    pub expires_at: Option<NaiveDateTime>,
    /// Non-empty: only within these networks.
    pub nets: &'a [IpNet],
    pub rate_limit_per_minute: Option<i64>,
    /// Non-empty lists: only within them.
    pub restrictions: &'a Restrictions,
}

impl Default for Bounds<'_> {
    fn default() -> Self {
        Bounds {
            scopes: None,
            mode: None,
            expires_at: None,
            nets: &[],
            rate_limit_per_minute: None,
            restrictions: &NO_RESTRICTIONS,
        }
    }
}

static NO_SCOPES: ScopeSet = ScopeSet::EMPTY;
/// No referrer or endpoint lists.
pub static NO_RESTRICTIONS: Restrictions = Restrictions {
    referrers: Vec::new(),
    endpoints: Vec::new(),
};

/// What the caller's own credential holds.
pub fn bounds<'a>(caller: &Caller<'a>) -> Bounds<'a> {
    match caller.via {
        Via::Scraper => Bounds {
            scopes: Some(&NO_SCOPES),
            ..Bounds::default()
        },
        Via::Session | Via::Operator => Bounds::default(),
        Via::Key(k) => Bounds {
            scopes: (k.kind == Kind::Restricted).then_some(k.scopes),
            mode: (k.mode == Mode::Test).then_some(Mode::Test),
            expires_at: k.expires_at,
            nets: k.nets,
            rate_limit_per_minute: k.rate_limit_per_minute,
            restrictions: k.restrictions,
        },
        Via::AppToken {
            scopes, expires_at, ..
        } => Bounds {
            scopes: Some(scopes),
            expires_at: Some(expires_at),
            ..Bounds::default()
        },
        Via::App { scopes, .. } => Bounds {
            scopes: Some(scopes),
            ..Bounds::default()
        },
    }
}

/// The scopes of a token exchanged for the caller's credential (RFC 8693): those asked, each
/// registered and held by the caller; when none are asked, the caller's own — a credential that
/// holds every scope of its owner (a secret key) must name the ones the token needs.
pub fn exchanged_scopes(
    caller: &Caller,
    asked: Option<&ScopeSet>,
    registry: &[crate::scopes::registry::RegisteredScope],
) -> Result<ScopeSet, String> {
    let Some(asked) = asked else {
        return bounds(caller).scopes.cloned().ok_or_else(|| {
            "this credential holds every scope of its owner: name the ones the token needs in scope"
                .to_owned()
        });
    };
    for scope in asked.iter() {
        let Some(registered) = registry.iter().find(|r| r.name == scope.as_str()) else {
            return Err(format!("the scope {scope} is not registered"));
        };
        if !caller.holds_name(scope.as_str(), registered.is_admin_only()) {
            return Err(format!("the scope {scope}, which the credential lacks"));
        }
    }
    Ok(asked.clone())
}

/// Whether every network of `inner` lies inside one of `outer`.
fn nets_within(inner: &[IpNet], outer: &[IpNet]) -> bool {
    inner
        .iter()
        .all(|n| outer.iter().any(|o| o.contains(n) || o == n))
}

/// `Ok` when `key` is no broader than `bounds`; otherwise the first dimension in which it is.
pub fn admits(bounds: &Bounds, key: &KeyShape) -> Result<(), String> {
    if let Some(held) = bounds.scopes {
        if key.kind == Kind::Secret {
            return Err("a full-access key, and the caller is restricted".into());
        }
        if let Some(extra) = key.scopes.difference(held).first() {
            return Err(format!("the scope {extra}, which the caller lacks"));
        }
    }
    if bounds.mode == Some(Mode::Test) && key.mode == Mode::Live {
        return Err("live mode, and the caller is a test-mode key".into());
    }
    if let Some(limit) = bounds.expires_at {
        match key.expires_at {
            None => return Err("no expiry, and the caller expires".into()),
            Some(t) if t > limit => {
                return Err(format!(
                    "an expiry after the caller's own ({})",
                    limit.and_utc().to_rfc3339()
                ));
            }
            Some(_) => {}
        }
    }
    if !bounds.nets.is_empty() && (key.nets.is_empty() || !nets_within(key.nets, bounds.nets)) {
        return Err("an IP allowlist wider than the caller's".into());
    }
    if let Some(limit) = bounds.rate_limit_per_minute
        && key.rate_limit_per_minute.is_none_or(|r| r > limit)
    {
        return Err(format!(
            "a rate limit above the caller's {limit} per minute"
        ));
    }
    bounds.restrictions.admits(key.restrictions)?;
    Ok(())
}

/// What a new credential takes from its caller where its request said nothing: the caller's
/// allowlist, rate limit and (as the latest allowed) expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inherited {
    pub nets: Vec<IpNet>,
    pub restrictions: Restrictions,
    pub rate_limit_per_minute: Option<i64>,
    /// The latest expiry the new credential may have.
    pub latest_expiry: Option<NaiveDateTime>,
}

pub fn inherit(
    bounds: &Bounds,
    nets: &[IpNet],
    restrictions: Restrictions,
    rate_limit_per_minute: Option<i64>,
) -> Inherited {
    Inherited {
        restrictions: bounds.restrictions.inherit(restrictions),
        nets: if nets.is_empty() {
            bounds.nets.to_vec()
        } else {
            nets.to_vec()
        },
        rate_limit_per_minute: rate_limit_per_minute.or(bounds.rate_limit_per_minute),
        latest_expiry: bounds.expires_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn shape<'a>(scopes: &'a ScopeSet, nets: &'a [IpNet]) -> KeyShape<'a> {
        KeyShape {
            kind: Kind::Restricted,
            mode: Mode::Live,
            scopes,
            expires_at: Some(NaiveDateTime::MIN),
            nets,
            rate_limit_per_minute: Some(10),
            restrictions: &NO_RESTRICTIONS,
        }
    }

    #[test]
    fn a_key_inside_every_bound_is_admitted_and_each_widening_is_named() {
        let held = ScopeSet::parse("read:users write:api_keys").unwrap();
        let outer = [net("10.0.0.0/8")];
        let bounds = Bounds {
            scopes: Some(&held),
            mode: None,
            expires_at: Some(NaiveDateTime::MIN + chrono::Duration::days(1)),
            nets: &outer,
            rate_limit_per_minute: Some(10),
            restrictions: &NO_RESTRICTIONS,
        };
        let narrow = ScopeSet::parse("read:users").unwrap();
        let inner = [net("10.1.0.0/16")];
        assert_eq!(admits(&bounds, &shape(&narrow, &inner)), Ok(()));

        let wide = ScopeSet::parse("read:users write:users").unwrap();
        assert!(
            admits(&bounds, &shape(&wide, &inner))
                .unwrap_err()
                .contains("write:users")
        );
        let mut full = shape(&narrow, &inner);
        full.kind = Kind::Secret;
        assert!(admits(&bounds, &full).is_err());
        assert!(admits(&bounds, &shape(&narrow, &[])).is_err(), "anywhere");
        assert!(admits(&bounds, &shape(&narrow, &[net("11.0.0.0/8")])).is_err());
        let mut later = shape(&narrow, &inner);
        later.expires_at = None;
        assert!(admits(&bounds, &later).is_err());
        let mut faster = shape(&narrow, &inner);
        faster.rate_limit_per_minute = Some(11);
        assert!(admits(&bounds, &faster).is_err());
        let test_only = Bounds {
            mode: Some(Mode::Test),
            ..Bounds::default()
        };
        assert!(admits(&test_only, &shape(&narrow, &inner)).is_err());
    }

    #[test]
    fn a_new_key_inherits_the_callers_allowlist_and_rate_limit_when_it_names_none() {
        let outer = [net("192.0.2.0/24")];
        let bounds = Bounds {
            nets: &outer,
            rate_limit_per_minute: Some(5),
            ..Bounds::default()
        };
        let got = inherit(&bounds, &[], Restrictions::default(), None);
        assert_eq!(got.nets, outer.to_vec());
        assert_eq!(got.rate_limit_per_minute, Some(5));
        let own = [net("192.0.2.7/32")];
        assert_eq!(
            inherit(&bounds, &own, Restrictions::default(), Some(2)).nets,
            own.to_vec()
        );
    }
}
