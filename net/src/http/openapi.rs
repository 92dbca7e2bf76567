//! The OpenAPI 3 document of the HTTP API (`GET /api/openapi.json`), generated from the
//! handlers' annotations and the types they take and answer, so it cannot drift from the
//! code: a test checks that it names every route the router serves, and the API fuzzer of the
//! test script checks every answer against it.

use std::sync::OnceLock;

use axum::{
    http::header,
    response::{IntoResponse, Response},
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use super::{admin, auth, commands, health, me, page, read, sandbox};

/// Adds the bearer token scheme the authenticated routes name.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from register or login: 64 hexadecimal characters",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's TIANXIA_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tianxia",
        description = "The HTTP API of tianxia, a server-authoritative Three Kingdoms grand-strategy game server (docs/http.md)."
    ),
    paths(
        health::health,
        health::ready,
        health::metrics,
        admin::reload,
        admin::flush,
        admin::maintenance,
        admin::status,
        read::world,
        read::rules,
        read::nations,
        read::nation,
        read::cities,
        read::city,
        read::generals,
        read::general,
        read::battles,
        read::battle,
        read::frame,
        read::recording,
        read::events,
        read::leaderboard,
        auth::register,
        auth::login,
        auth::logout,
        commands::join,
        commands::command,
        commands::order,
        me::me,
        me::orders,
        sandbox::give,
        sandbox::teleport,
        sandbox::clock,
        openapi_json,
        page::index,
        page::docs,
        page::file,
        crate::ws::upgrade,
    ),
    components(schemas(
        components::read_model::RankBy,
        components::battle::BattleStatus,
        super::me::OrderFilter,
    )),
    modifiers(&Bearer),
    tags(
        (name = "world", description = "The world as the World last published it"),
        (name = "accounts", description = "Registration, login and tokens"),
        (name = "commands", description = "Joining, commands and the caller's orders"),
        (name = "sandbox", description = "Edits of a sandbox world, on a server started with serve --sandbox; 404 on any other (docs/sandbox.md)"),
        (name = "realtime", description = "The WebSocket: live events, entity state, battle frames and the caller's orders (docs/websocket.md)"),
        (name = "admin", description = "Operators' routes behind TIANXIA_ADMIN_TOKEN; 404 without it (docs/http.md#admin-routes)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "page", description = "The spectator page, this reference, and their files, compiled into the server (docs/page.md)"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}

#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    responses((status = 200, description = "this document", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}
