//! The OpenAPI 3.1 document of Gatehouse's API (`GET /openapi.json`), generated from the
//! handlers' `#[utoipa::path]` attributes and the `ToSchema` types they answer with, so that it
//! describes what the code does. Built once per server at start-up, with the server's issuer as
//! its base URL. What every `/v1` operation shares — the ways to authenticate, the error
//! answers of the gate and the extractors, the rate-limit headers — is added here, once, by
//! `Conventions`; the handlers declare what is theirs (scope, body, success, specific errors).
//! HTML pages are not in it.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, AuthorizationCode, ClientCredentials, Flow, HttpAuthScheme, HttpBuilder,
    OAuth2, Scopes, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Server};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::http::ErrorCode;
use crate::http::errors::ErrorEnvelope;
use crate::http::openapi::{every_response_headers, rate_limit_headers, retry_after_header};
use crate::scopes::Builtin;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse",
        description = "OAuth 2.0 authorization server and API-key service. `/v1` answers in the \
            envelope `{\"success\": true, \"data\": …}` or `{\"success\": false, \"error\": \
            {\"code\", \"message\", \"doc_url\"}, \"meta\": {\"request_id\", \"timestamp\"}}`; \
            the codes are listed at `/docs/errors`. The OAuth endpoints answer as their RFCs say.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::accounts::api::get_me,
        crate::accounts::api::update_me,
        crate::accounts::api::list_users,
        crate::accounts::api::create_user,
        crate::accounts::api::get_user,
        crate::api_keys::api::list_for_user,
        crate::api_keys::api::create_for_user,
        crate::api_keys::api::list_own,
        crate::api_keys::api::create_own,
        crate::api_keys::api::get_key,
        crate::api_keys::api::update_key,
        crate::api_keys::api::revoke_key,
        crate::api_keys::api::roll_key,
        crate::api_keys::api::audit_events,
        crate::clients::api::list_clients,
        crate::clients::api::create_client,
        crate::clients::api::get_client,
        crate::clients::api::update_client,
        crate::clients::api::delete_client,
        crate::clients::api::rotate_secret,
        crate::clients::api::list_consents,
        crate::clients::api::revoke_consent,
        crate::workspaces::api::list_workspaces,
        crate::workspaces::api::create_workspace,
        crate::workspaces::api::get_workspace,
        crate::workspaces::api::update_workspace,
        crate::workspaces::api::delete_workspace,
        crate::workspaces::api::list_members,
        crate::workspaces::api::change_member_role,
        crate::workspaces::api::remove_member,
        crate::workspaces::api::issue_member_key,
        crate::workspaces::api::invite_member,
        crate::workspaces::api::list_invitations,
        crate::workspaces::api::revoke_invitation,
        crate::workspaces::api::list_workspace_keys,
        crate::workspaces::api::revoke_member_key,
        crate::workspaces::api::workspace_audit_events,
        crate::workspaces::api::accept_invitation,
        crate::authorize::authorize,
        crate::token::token,
        crate::authorize::par::push,
        crate::device::authorization,
        crate::token::introspect::introspect,
        crate::token::introspect::revoke,
        crate::oauth::metadata::metadata,
        crate::oauth::metadata::openid_configuration,
        crate::oauth::metadata::protected_resource,
        crate::clients::registration::register,
        crate::clients::registration::read,
        crate::clients::registration::update,
        crate::clients::registration::delete,
        crate::oidc::userinfo::userinfo,
        crate::oidc::logout::end_session,
        crate::oidc::userinfo::userinfo_post,
        crate::oauth::metadata::jwks,
        crate::health::healthz,
        crate::health::readyz,
        crate::metrics::http::scrape,
        openapi_json,
    ),
    components(schemas(ErrorEnvelope, ErrorCode)),
    modifiers(&Conventions),
    tags(
        (name = "users", description = "Who is calling, and user accounts"),
        (name = "api-keys", description = "API keys (`sk_live_`, `sk_test_`, `rk_live_`, `rk_test_`)"),
        (name = "audit", description = "The audit log"),
        (name = "clients", description = "OAuth clients (apps)"),
        (name = "consents", description = "The apps a user connected"),
        (name = "workspaces", description = "Workspaces, their members, invitations and members' keys"),
        (name = "oauth", description = "OAuth 2.0 endpoints: RFC 6749 errors, not the envelope"),
        (name = "discovery", description = "Metadata and keys for clients and resource servers"),
        (name = "health", description = "For load balancers and orchestrators"),
    )
)]
struct ApiDoc;

/// The document as served: built once, kept as bytes.
pub struct OpenApiDocument(web::Bytes);

impl OpenApiDocument {
    /// The document for a server reached at `issuer`.
    pub fn build(issuer: &str) -> OpenApiDocument {
        OpenApiDocument(web::Bytes::from(
            serde_json::to_vec(&document(issuer)).unwrap_or_default(),
        ))
    }

    pub fn bytes(&self) -> &web::Bytes {
        &self.0
    }
}

/// The document for a server reached at `issuer`, as JSON.
pub fn document(issuer: &str) -> Value {
    let mut api = ApiDoc::openapi();
    api.servers = Some(vec![Server::new(issuer)]);
    let mut document = serde_json::to_value(&api).unwrap_or_default();
    camel_case_links(&mut document);
    document
}

/// utoipa 5.5 writes a Link Object's members in snake case (`operation_id`); OpenAPI names
/// them `operationId`, `operationRef` and `requestBody`.
fn camel_case_links(document: &mut Value) {
    let responses = document["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses"))
        .filter_map(Value::as_object_mut)
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(Value::as_object_mut) else {
            continue;
        };
        for link in links.values_mut().filter_map(Value::as_object_mut) {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
}

/// This document
///
/// OpenAPI 3.1, generated from the code. Public.
#[utoipa::path(get, path = "/openapi.json", tag = "discovery", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document", body = Object, content_type = "application/json")))]
pub async fn openapi_json(document: web::Data<OpenApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .body(document.bytes().clone())
}

/// The security schemes, and for every operation the answers it shares with its kind.
struct Conventions;

/// Security scheme names.
const BEARER: &str = "bearer";
const API_KEY_HEADER: &str = "api_key_header";
const SESSION: &str = "session";
const OAUTH2: &str = "oauth2";
const CLIENT_BASIC: &str = "client_basic";
const METRICS_TOKEN: &str = "metrics_token";
const REGISTRATION_TOKEN: &str = "registration_access_token";

/// The OAuth endpoints counted per client address (and per client).
const LIMITED_OAUTH: &[&str] = &[
    "/oauth/token",
    "/oauth/par",
    "/oauth/device_authorization",
    "/oauth/introspect",
    "/oauth/revoke",
    "/oauth/register",
    "/oauth/register/{client_id}",
];

impl Modify for Conventions {
    fn modify(&self, api: &mut Document) {
        let components = api.components.get_or_insert_with(Default::default);
        for (name, scheme) in security_schemes() {
            components.add_security_scheme(name, scheme);
        }
        for (name, response) in v1_error_responses() {
            components
                .responses
                .insert(name.to_owned(), response.into());
        }
        for (path, item) in api.paths.paths.iter_mut() {
            let v1 = path.starts_with("/v1/");
            let limited = v1 || LIMITED_OAUTH.contains(&path.as_str());
            for operation in operations(item) {
                if v1 {
                    v1_conventions(path, operation);
                }
                add_headers(operation, limited);
                add_links(operation);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn scopes() -> Scopes {
    Builtin::ALL
        .iter()
        .map(|s| (s.as_str(), s.description()))
        .collect()
}

fn security_schemes() -> Vec<(&'static str, SecurityScheme)> {
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some(
            "An API key (`sk_live_…`, `sk_test_…`, `rk_live_…`, `rk_test_…`) or an OAuth access \
             token (a JWT). A key is also accepted as `Authorization: ApiKey <key>`. A secret key \
             (`sk_`) holds every scope its owner's role allows; a restricted key (`rk_`) or an \
             access token only its scopes, and an administrator's role counts only within them.",
        ))
        .build();
    let oauth2 = OAuth2::with_description(
        [
            Flow::AuthorizationCode(AuthorizationCode::new(
                "/oauth/authorize",
                "/oauth/token",
                scopes(),
            )),
            Flow::ClientCredentials(ClientCredentials::new("/oauth/token", scopes())),
        ],
        "Authorization code with PKCE (S256; required of public clients) and \
         client_credentials. Access tokens of client_credentials act for an app: `/v1` refuses \
         them (`AUTH_004`); they are for your own resource servers. Products add their own \
         scopes to the registry (see `/.well-known/oauth-authorization-server`).",
    );
    vec![
        (BEARER, SecurityScheme::Http(bearer)),
        (
            API_KEY_HEADER,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key in its own header (never in the URL: `?api_key=`, `?key=` and \
                 `?access_token=` are refused with `AUTH_003`).",
            ))),
        ),
        (
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "gatehouse_session",
                "The browser session of Gatehouse's own pages (`__Host-gatehouse_session` behind \
                 https). A request that changes something must not come from another origin.",
            ))),
        ),
        (OAUTH2, SecurityScheme::OAuth2(oauth2)),
        (
            METRICS_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator's metrics token (`GATEHOUSE_METRICS_TOKEN`), for `/metrics` \
                         only.",
                    ))
                    .build(),
            ),
        ),
        (
            REGISTRATION_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "RFC 7592: the `rat_…` token answered once by `POST /oauth/register`, \
                         for reading, changing and deleting that registration only.",
                    ))
                    .build(),
            ),
        ),
        (
            CLIENT_BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "OAuth client authentication (`client_secret_basic`): the client id \
                         and secret, form-urlencoded, then Basic-encoded. Alternatively \
                         `client_id` and `client_secret` in the body (`client_secret_post`).",
                    ))
                    .build(),
            ),
        ),
    ]
}

/// A `/v1` error answer: the envelope, with an example per code it can carry.
fn error_response(description: &str, codes: &[ErrorCode], retry_after: bool) -> Response {
    let examples = codes.iter().map(|code| {
        let example = utoipa::openapi::example::ExampleBuilder::new()
            .summary(code.title())
            .value(Some(json!({
                "success": false,
                "error": {
                    "code": code.as_str(),
                    "message": code.title(),
                    "doc_url": format!("https://auth.example.com/docs/errors#{}", code.as_str()),
                },
                "meta": { "request_id": "req_4fN0xGm2kQh1sTz8", "timestamp": "2026-11-22T10:00:00Z" },
            })))
            .build();
        (code.as_str(), example)
    });
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorEnvelope::name())))
        .examples_from_iter(examples)
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    for (name, header) in every_response_headers()
        .into_iter()
        .chain(rate_limit_headers())
        .chain(retry_after.then(retry_after_header))
    {
        response = response.header(name, header);
    }
    response.build()
}

fn v1_error_responses() -> Vec<(&'static str, Response)> {
    use ErrorCode as C;
    vec![
        (
            "BadRequest",
            error_response(
                "A field, parameter or body is not valid",
                &[C::Validation, C::MalformedBody],
                false,
            ),
        ),
        (
            "Unauthorized",
            error_response(
                "No credential, or one that is invalid, expired, revoked or malformed \
                 (`AUTH_001` carries `WWW-Authenticate: Bearer`)",
                &[
                    C::NotAuthenticated,
                    C::InvalidCredential,
                    C::MalformedCredential,
                ],
                false,
            ),
        ),
        (
            "Forbidden",
            error_response(
                "The credential lacks the scope or role, its address is not allowed, the \
                 result would be broader than it, or its session must change its password",
                &[
                    C::Forbidden,
                    C::IpNotAllowed,
                    C::ReferrerNotAllowed,
                    C::EndpointNotAllowed,
                    C::Broader,
                    C::PasswordChangeRequired,
                ],
                false,
            ),
        ),
        (
            "NotFound",
            error_response(
                "No such thing, or not one the caller may know of",
                &[C::NotFound],
                false,
            ),
        ),
        (
            "PayloadTooLarge",
            error_response("The body is too large", &[C::BodyTooLarge], false),
        ),
        (
            "UnsupportedMediaType",
            error_response(
                "The body is not `application/json`",
                &[C::UnsupportedMediaType],
                false,
            ),
        ),
        (
            "TooManyRequests",
            error_response(
                "The credential (or, without one, the address) used its allowance",
                &[C::RateLimited],
                true,
            ),
        ),
        (
            "Unavailable",
            error_response(
                "The database cannot be reached, or the server is busy hashing passwords",
                &[C::Unavailable],
                true,
            ),
        ),
    ]
}

/// The scopes an operation declared with its `oauth2` requirement.
fn declared_scopes(operation: &Operation) -> Vec<String> {
    let declared = serde_json::to_value(&operation.security).unwrap_or_default();
    declared
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|requirement| requirement.get(OAUTH2))
        .flat_map(|scopes| scopes.as_array().cloned().unwrap_or_default())
        .filter_map(|scope| scope.as_str().map(str::to_owned))
        .collect()
}

/// Every `/v1` operation: any credential may call it, within the scope it declared, and the
/// gate, the policy and the extractors answer their errors in the envelope.
fn v1_conventions(path: &str, operation: &mut Operation) {
    let scopes = declared_scopes(operation);
    operation.security = Some(vec![
        SecurityRequirement::new(BEARER, scopes.clone()),
        SecurityRequirement::new(API_KEY_HEADER, scopes.clone()),
        SecurityRequirement::new(SESSION, Vec::<String>::new()),
        SecurityRequirement::new(OAUTH2, scopes.clone()),
    ]);
    if !scopes.is_empty() {
        let needs = format!(
            "Needs the scope{} {}.",
            if scopes.len() > 1 { "s" } else { "" },
            scopes
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        operation.description = Some(match operation.description.take() {
            Some(d) if !d.is_empty() => format!("{d}\n\n{needs}"),
            _ => needs,
        });
    }
    let has_body = operation.request_body.is_some();
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
    let mut shared = vec![
        ("401", "Unauthorized"),
        ("403", "Forbidden"),
        ("429", "TooManyRequests"),
        ("503", "Unavailable"),
    ];
    if has_body || has_query {
        shared.push(("400", "BadRequest"));
    }
    if has_body {
        shared.push(("413", "PayloadTooLarge"));
        shared.push(("415", "UnsupportedMediaType"));
    }
    if path.contains('{') {
        shared.push(("404", "NotFound"));
    }
    for (status, name) in shared {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))));
    }
}

/// `X-Request-Id` on every answer, and the rate-limit headers on those of counted requests
/// (the shared `/v1` error responses carry theirs already).
fn add_headers(operation: &mut Operation, limited: bool) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let headers = every_response_headers()
            .into_iter()
            .chain(if limited {
                rate_limit_headers()
            } else {
                Vec::new()
            })
            .chain((limited && status == "429").then(retry_after_header));
        for (name, header) in headers {
            response.headers.entry(name.to_owned()).or_insert(header);
        }
    }
}

/// The operations a response links to: (target operation, value of its `id` path parameter).
type Targets = &'static [(&'static str, &'static str)];

/// Links from what an operation creates or lists to the operations on it, for clients and for
/// stateful testing: (operation, status, targets).
const LINKS: &[(&str, &str, Targets)] = &[
    (
        "create_own",
        "201",
        &[
            ("get_key", "$response.body#/data/id"),
            ("update_key", "$response.body#/data/id"),
            ("roll_key", "$response.body#/data/id"),
            ("revoke_key", "$response.body#/data/id"),
        ],
    ),
    (
        "create_for_user",
        "201",
        &[
            ("get_key", "$response.body#/data/id"),
            ("revoke_key", "$response.body#/data/id"),
        ],
    ),
    (
        "roll_key",
        "201",
        &[
            ("get_key", "$response.body#/data/id"),
            ("revoke_key", "$response.body#/data/id"),
        ],
    ),
    (
        "create_user",
        "201",
        &[
            ("get_user", "$response.body#/data/id"),
            ("list_for_user", "$response.body#/data/id"),
            ("create_for_user", "$response.body#/data/id"),
        ],
    ),
    (
        "list_own",
        "200",
        &[("get_key", "$response.body#/data/0/id")],
    ),
    (
        "list_users",
        "200",
        &[("get_user", "$response.body#/data/0/id")],
    ),
    (
        "list_clients",
        "200",
        &[("get_client", "$response.body#/data/0/client_id")],
    ),
    (
        "list_consents",
        "200",
        &[("revoke_consent", "$response.body#/data/0/id")],
    ),
    (
        "create_client",
        "201",
        &[
            ("get_client", "$response.body#/data/client_id"),
            ("update_client", "$response.body#/data/client_id"),
            ("rotate_secret", "$response.body#/data/client_id"),
            ("delete_client", "$response.body#/data/client_id"),
        ],
    ),
];

fn add_links(operation: &mut Operation) {
    let Some(id) = operation.operation_id.as_deref() else {
        return;
    };
    for (_, status, links) in LINKS.iter().filter(|(from, _, _)| *from == id) {
        let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status) else {
            continue;
        };
        for (target, value) in *links {
            let link = utoipa::openapi::link::LinkBuilder::new()
                .operation_id(*target)
                .parameter("id", Value::from(*value))
                .build();
            response.links.insert((*target).to_owned(), RefOr::T(link));
        }
    }
}
