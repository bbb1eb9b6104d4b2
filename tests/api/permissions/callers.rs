//! Every cell of the matrix asked of a live server on both databases: the world of callers and
//! targets each cell needs, fresh targets per cell, and what a refusal must have left alone.

use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{TestApp, hidden_field};
use crate::oauth::{TestClient, exchange, obtain_tokens_for};

use super::{Body, CALLERS, MATRIX, Row, SI};

/// Every scope a member may hold (the member's "with the scopes" credentials carry them).
const MEMBER_SCOPES: &str = "read:users write:profile read:api_keys write:api_keys read:clients \
     write:clients read:consents write:consents read:products read:workspaces write:workspaces";

/// Every scope, admin-only ones included.
const ALL_SCOPES: &str = "read:users write:profile read:api_keys write:api_keys read:clients \
     write:clients read:consents write:consents read:products write:users admin:users \
     admin:clients introspect read:audit read:workspaces write:workspaces";

/// The "without" credentials hold a scope no route of Gatehouse's needs.
const UNRELATED_SCOPE: &str = "read:products";

/// How one kind of caller sends a request.
#[derive(Clone)]
enum Presents {
    Nothing,
    Session(reqwest::Client, String),
    Bearer(String),
}

struct World {
    member_id: String,
    member2_id: String,
    /// A third user, whom only the admin-page forms act on (disabling them ends nobody's
    /// caller).
    user3_id: String,
    admin_id: String,
    callers: Vec<Presents>,
}

async fn login_browser(app: &TestApp, email: &str, password: &str) -> (reqwest::Client, String) {
    let (browser, response) = app.login_in_new_browser(email, password).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} signs in");
    let page = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf_token").expect("a CSRF token");
    (browser, csrf)
}

async fn key_via(browser: &reqwest::Client, app: &TestApp, body: Value) -> String {
    let response = browser
        .post(app.url("/v1/api-keys"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    let created: Value = response.json().await.unwrap();
    created["data"]["key"].as_str().unwrap().to_owned()
}

async fn token(app: &TestApp, client: &TestClient, scope: &str) -> String {
    let tokens = obtain_tokens_for(app, client, scope).await;
    tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a token for {scope}: {tokens}"))
        .to_owned()
}

async fn world(app: &TestApp) -> World {
    let member_id = app
        .create_user("mia@example.com", "mia password 1", false)
        .await;
    let member2_id = app
        .create_user("max@example.com", "max password 1", false)
        .await;
    let gone_id = app
        .create_user("gone@example.com", "gone password 1", false)
        .await;
    let user3_id = app
        .create_user("una@example.com", "una password 1", false)
        .await;
    app.login_admin().await;
    let me: Value = app.me().await.json().await.unwrap();
    let admin_id = me["data"]["id"].as_str().unwrap().to_owned();
    // A first-party app owned by the admin, allowed every scope, with client_credentials.
    let everything = crate::integrity::app_with(app, ALL_SCOPES, &[]).await;

    // The member's tokens: the member signs in on the test's own browser for the flow.
    let (member_browser, member_csrf) =
        login_browser(app, "mia@example.com", "mia password 1").await;
    let response = app.login("mia@example.com", "mia password 1").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let member_token = token(app, &everything, MEMBER_SCOPES).await;
    let member_token0 = token(app, &everything, UNRELATED_SCOPE).await;
    app.login_admin().await;
    let admin_token = token(app, &everything, ALL_SCOPES).await;
    let (admin_browser, admin_csrf) = login_browser(
        app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;

    let cc: Value = exchange(
        app,
        &everything,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:users"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let cc_token = cc["access_token"].as_str().unwrap().to_owned();

    // The second member, and a shared workspace of theirs where the member is a member and
    // was issued a key by them.
    let (max_browser, max_csrf) = login_browser(app, "max@example.com", "max password 1").await;
    let issued_in_shared = {
        let created: Value = max_browser
            .post(app.url("/v1/workspaces"))
            .json(&json!({ "name": "Max's team" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let team = created["data"]["id"].as_str().unwrap().to_owned();
        let (team_id, mia) = (team.clone(), member_id.clone());
        // Set up as the operator would (the test's own arrangement, not a caller's request).
        let allowed = gatehouse::policy::authorize(
            &gatehouse::policy::Caller::operator(),
            gatehouse::policy::Action::JoinWorkspace,
        )
        .unwrap();
        app.state
            .db(move |c| {
                gatehouse::workspaces::add_member(
                    c,
                    allowed,
                    &team_id,
                    &mia,
                    gatehouse::workspaces::WsRole::Member,
                    gatehouse::accounts::now(),
                )
            })
            .await
            .unwrap();
        let issued: Value = max_browser
            .post(app.url(&format!(
                "/v1/workspaces/{team}/members/{member_id}/api-keys"
            )))
            .json(&json!({ "name": "issued by max" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        issued["data"]["key"]
            .as_str()
            .unwrap_or_else(|| panic!("issued: {issued}"))
            .to_owned()
    };

    let gone_key = {
        let (gone_browser, _) = login_browser(app, "gone@example.com", "gone password 1").await;
        key_via(&gone_browser, app, json!({ "name": "gone" })).await
    };
    let id = gone_id.clone();
    app.state
        .db(move |c| {
            gatehouse::accounts::model::set_disabled(c, &id, true, gatehouse::accounts::now())
        })
        .await
        .unwrap();
    app.state.key_cache.invalidate_all();

    let callers = vec![
        Presents::Nothing,
        Presents::Session(member_browser.clone(), member_csrf),
        Presents::Session(admin_browser.clone(), admin_csrf),
        Presents::Bearer(key_via(&member_browser, app, json!({ "name": "sk" })).await),
        Presents::Bearer(
            key_via(
                &member_browser,
                app,
                json!({ "name": "skt", "mode": "test" }),
            )
            .await,
        ),
        Presents::Bearer(
            key_via(
                &member_browser,
                app,
                json!({ "name": "rk", "scopes": MEMBER_SCOPES }),
            )
            .await,
        ),
        Presents::Bearer(
            key_via(
                &member_browser,
                app,
                json!({ "name": "rk0", "scopes": UNRELATED_SCOPE }),
            )
            .await,
        ),
        Presents::Bearer(key_via(&admin_browser, app, json!({ "name": "ask" })).await),
        Presents::Bearer(
            key_via(
                &admin_browser,
                app,
                json!({ "name": "ark", "scopes": ALL_SCOPES }),
            )
            .await,
        ),
        Presents::Bearer(
            key_via(
                &admin_browser,
                app,
                json!({ "name": "ark0", "scopes": UNRELATED_SCOPE }),
            )
            .await,
        ),
        Presents::Bearer(member_token),
        Presents::Bearer(member_token0),
        Presents::Bearer(admin_token),
        Presents::Bearer(cc_token),
        Presents::Bearer(gone_key),
        Presents::Session(max_browser.clone(), max_csrf),
        Presents::Bearer(key_via(&max_browser, app, json!({ "name": "max's" })).await),
        Presents::Bearer(issued_in_shared),
    ];
    assert_eq!(callers.len(), CALLERS.len());
    World {
        member_id,
        member2_id,
        user3_id,
        admin_id,
        callers,
    }
}

/// Fresh targets of the member's for one cell: (key id, key secret, client id, consent id).
async fn fresh_targets(app: &TestApp, member_id: &str) -> (String, String, String, String) {
    use gatehouse::api_keys::format::{Kind, Mode};
    use gatehouse::api_keys::model::{self, NewKey};
    use gatehouse::clients::redirect::RedirectUri;
    use gatehouse::clients::{self, ClientType, NewClient, default_grant_types};
    use gatehouse::scopes::ScopeSet;
    let (pepper, now, owner) = (
        app.state.digest_pepper.clone(),
        app.state.now(),
        member_id.to_owned(),
    );
    app.state
        .db(move |c| {
            let personal = gatehouse::workspaces::personal_of(c, &owner)?.unwrap();
            let key = NewKey {
                user_id: owner.clone(),
                workspace_id: personal.id.clone(),
                issued_by: owner.clone(),
                name: "target".into(),
                description: String::new(),
                mode: Mode::Test,
                kind: Kind::Restricted,
                scopes: ScopeSet::parse("read:products").unwrap(),
                allowed_ips: Vec::new(),
                restrictions: Default::default(),
                rate_limit_per_minute: None,
                expires_at: Some(now + chrono::Duration::hours(1)),
                rolled_from: None,
            };
            let (key, secret) = model::insert(c, &pepper, &key, now)?;
            let app_row = NewClient {
                name: "Mia's app".into(),
                owner_user_id: Some(owner.clone()),
                client_type: ClientType::Confidential,
                redirect_uris: vec![RedirectUri::parse("https://mia.example.com/cb").unwrap()],
                scopes: ScopeSet::parse("read:products").unwrap(),
                first_party: false,
                grant_types: default_grant_types(),
                resources: Vec::new(),
                ..Default::default()
            };
            let (client, _) = clients::create(c, &pepper, &app_row, now)?;
            let consent_id = format!("con_{}", gatehouse::secrets::random_base62(16));
            {
                use diesel::ExpressionMethods;
                use gatehouse::db::schema::consents::dsl as k;
                diesel::insert_into(k::consents)
                    .values((
                        k::id.eq(&consent_id),
                        k::user_id.eq(&owner),
                        k::client_id.eq(&client.id),
                        k::scopes.eq("read:products"),
                        // Approved in the member's personal workspace, as every approval is
                        // recorded in the workspace it was given in.
                        k::workspace_id.eq(&personal.id),
                        k::created_at.eq(now),
                        k::updated_at.eq(now),
                    ))
                    .execute(c)?;
            }
            Ok((key.id, secret.expose().to_owned(), client.id, consent_id))
        })
        .await
        .unwrap()
}

/// Fresh workspace targets for one cell: (shared workspace, the member's personal workspace,
/// the second member's key in the shared one, a pending invitation there, the token of an
/// invitation for the member to a workspace of the second member's).
async fn fresh_workspaces(app: &TestApp, world: &World) -> [String; 5] {
    use gatehouse::api_keys::format::{Kind, Mode};
    use gatehouse::api_keys::model::{self, NewKey};
    use gatehouse::scopes::ScopeSet;
    use gatehouse::workspaces::{self as ws, WsRole};
    let (pepper, now) = (app.state.digest_pepper.clone(), app.state.now());
    let (member, member2) = (world.member_id.clone(), world.member2_id.clone());
    // Arranged as the operator would: the services that change state take an `Allowed`.
    let allowed = gatehouse::policy::authorize(
        &gatehouse::policy::Caller::operator(),
        gatehouse::policy::Action::CreateWorkspace,
    )
    .unwrap();
    app.state
        .db(move |c| {
            let tag = gatehouse::secrets::random_base62(10).to_lowercase();
            let shared =
                ws::create_shared(c, allowed, "Shared", &format!("shared-{tag}"), &member, now)?
                    .unwrap();
            ws::add_member(c, allowed, &shared.id, &member2, WsRole::Member, now)?;
            let personal = ws::personal_of(c, &member)?.unwrap();
            let key = NewKey {
                user_id: member2.clone(),
                workspace_id: shared.id.clone(),
                issued_by: member.clone(),
                name: "member key".into(),
                description: String::new(),
                mode: Mode::Test,
                kind: Kind::Restricted,
                scopes: ScopeSet::parse("read:products").unwrap(),
                allowed_ips: Vec::new(),
                restrictions: Default::default(),
                rate_limit_per_minute: None,
                expires_at: Some(now + chrono::Duration::hours(1)),
                rolled_from: None,
            };
            let (key, _) = model::insert(c, &pepper, &key, now)?;
            let (invitation, _) = ws::invite(
                c,
                allowed,
                &pepper,
                &shared.id,
                &format!("x{tag}@example.com"),
                WsRole::Member,
                &member,
                now,
            )?;
            let theirs = ws::create_shared(
                c,
                allowed,
                "Theirs",
                &format!("theirs-{tag}"),
                &member2,
                now,
            )?
            .unwrap();
            let (_, token) = ws::invite(
                c,
                allowed,
                &pepper,
                &theirs.id,
                "mia@example.com",
                WsRole::Member,
                &member2,
                now,
            )?;
            Ok::<_, gatehouse::db::DbError>([
                shared.id,
                personal.id,
                key.id,
                invitation.id,
                token.expose().to_owned(),
            ])
        })
        .await
        .unwrap()
}

/// A key as `state_of` compares it: id, name, revoked, rolled to, expiry, allowlist.
type KeyState = (
    String,
    String,
    Option<chrono::NaiveDateTime>,
    Option<String>,
    Option<chrono::NaiveDateTime>,
    String,
);

/// An app as `state_of` compares it: id, name, redirect URIs, secret, disabled, first party.
type AppState = (
    String,
    String,
    String,
    Option<String>,
    Option<chrono::NaiveDateTime>,
    bool,
);

/// What a refused request must have left alone: the cell's targets as stored, and how many
/// rows each table holds (a refusal creates nothing). Times of use and audit events are not
/// in it (a refusal may be audited).
async fn state_of(app: &TestApp, targets: [String; 6]) -> String {
    use diesel::{ExpressionMethods, QueryDsl};
    use gatehouse::db::schema::{
        api_keys as k, clients as c, consents as n, users as u, workspace_invitations as i,
        workspace_members as m, workspaces as w,
    };
    app.state
        .db(move |conn| {
            let [key, client, consent, ws, wskey, inv] = targets;
            let users: Vec<(String, String, String, Option<chrono::NaiveDateTime>)> = u::table
                .select((u::id, u::display_name, u::role, u::disabled_at))
                .order(u::id)
                .load(conn)?;
            let keys: Vec<KeyState> = k::table
                .filter(k::id.eq_any([&key, &wskey]))
                .select((k::id, k::name, k::revoked_at, k::rolled_to, k::expires_at, k::allowed_ips))
                .order(k::id)
                .load(conn)?;
            let apps: Vec<AppState> =
                c::table
                    .filter(c::id.eq(&client))
                    .select((c::id, c::name, c::redirect_uris, c::secret_digest, c::disabled_at, c::first_party))
                    .load(conn)?;
            let consents: i64 = n::table.filter(n::id.eq(&consent)).count().get_result(conn)?;
            let spaces: Vec<(String, String, String)> = w::table
                .filter(w::id.eq(&ws))
                .select((w::id, w::name, w::key_issuance))
                .load(conn)?;
            let members: Vec<(String, String, String)> = m::table
                .select((m::workspace_id, m::user_id, m::role))
                .order((m::workspace_id, m::user_id))
                .load(conn)?;
            let invitations: Vec<(String, Option<chrono::NaiveDateTime>)> = i::table
                .filter(i::id.eq(&inv))
                .select((i::id, i::revoked_at))
                .load(conn)?;
            let counts: Vec<i64> = vec![
                k::table.count().get_result(conn)?,
                c::table.count().get_result(conn)?,
                n::table.count().get_result(conn)?,
                w::table.count().get_result(conn)?,
                i::table.count().get_result(conn)?,
            ];
            Ok::<_, gatehouse::db::DbError>(format!(
                "{users:?}\n{keys:?}\n{apps:?}\n{consents}\n{spaces:?}\n{members:?}\n{invitations:?}\n{counts:?}"
            ))
        })
        .await
        .unwrap()
}

/// One cell: the status (`SI` for a 303 to the sign-in page), and whether a refusal changed
/// what it must not have.
async fn ask(
    app: &TestApp,
    world: &World,
    caller: &Presents,
    row: &Row,
    uniq: usize,
) -> (u16, Option<String>) {
    let (method, path, body, _) = row;
    let (key, secret, client, consent) = fresh_targets(app, &world.member_id).await;
    let needs_workspaces = path.contains("{ws")
        || path.contains("{pws}")
        || path.contains("{inv_token}")
        || matches!(body, Body::Json(j) if j.contains("{inv_token}"));
    let [ws, pws, wskey, inv, inv_token] = if needs_workspaces {
        fresh_workspaces(app, world).await
    } else {
        Default::default()
    };
    let targets = [
        key.clone(),
        client.clone(),
        consent.clone(),
        ws.clone(),
        wskey.clone(),
        inv.clone(),
    ];
    let before = state_of(app, targets.clone()).await;
    let path = path
        .replace("{wskey}", &wskey)
        .replace("{ws}", &ws)
        .replace("{pws}", &pws)
        .replace("{inv}", &inv)
        .replace("{inv_token}", &inv_token)
        .replace("{member2}", &world.member2_id)
        .replace("{user3}", &world.user3_id)
        .replace("{member}", &world.member_id)
        .replace("{admin}", &world.admin_id)
        .replace("{key}", &key)
        .replace("{client}", &client)
        .replace("{consent}", &consent);
    let http = match caller {
        Presents::Session(browser, _) => browser.clone(),
        _ => reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    let mut request = http.request(method.parse().unwrap(), app.url(&path));
    if let Presents::Bearer(credential) = caller {
        request = request.bearer_auth(credential);
    }
    request = match body {
        Body::None
            if *method == "POST" && !path.starts_with("/v1") && !path.starts_with("/oauth") =>
        {
            let csrf = match caller {
                Presents::Session(_, csrf) => csrf.clone(),
                _ => String::new(),
            };
            request.form(&[("csrf_token", csrf.as_str())])
        }
        Body::None => request,
        Body::Json(json) => request.header("content-type", "application/json").body(
            json.replace("{uniq}", &uniq.to_string())
                .replace("{inv_token}", &inv_token),
        ),
        Body::Form(form) => request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.replace("{key_secret}", &secret)),
    };
    let response = request.send().await.unwrap();
    let mut status = response.status().as_u16();
    if status == 303
        && response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.starts_with("/login"))
    {
        status = SI;
    }
    drop(response);
    app.state.background.settled().await;
    let refused = status >= 400;
    let after = state_of(app, targets).await;
    let changed =
        (refused && before != after).then(|| format!("before:\n{before}\nafter:\n{after}"));
    (status, changed)
}

both_backends!(every_caller_gets_what_the_matrix_says, |app| async move {
    let world = world(app).await;
    let mut wrong = Vec::new();
    let mut uniq = 0;
    // GATEHOUSE_MATRIX_PRINT=1 prints what every cell answered, as rows to compare.
    let print = std::env::var_os("GATEHOUSE_MATRIX_PRINT").is_some();
    for row in MATRIX {
        let mut seen = Vec::new();
        for (column, caller) in world.callers.iter().enumerate() {
            uniq += 1;
            let (got, changed) = ask(app, &world, caller, row, uniq).await;
            seen.push(if got == SI {
                "SI".to_owned()
            } else {
                got.to_string()
            });
            let expected = row.3[column];
            if got != expected {
                wrong.push(format!(
                    "{} {} as {}: expected {expected}, got {got}",
                    row.0, row.1, CALLERS[column]
                ));
            }
            if let Some(changed) = changed {
                wrong.push(format!(
                    "{} {} as {}: refused ({got}) but changed what it must not:\n{changed}",
                    row.0, row.1, CALLERS[column]
                ));
            }
        }
        if print {
            eprintln!("MATRIX {} {} [{}]", row.0, row.1, seen.join(", "));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
});
