//! Read routes (docs/http.md#world-state): the world summary, nations, cities, generals,
//! battles and the leaderboard, served from the last published snapshot; domain events from
//! the durable log.

use std::{ops::Bound, sync::Arc};

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use components::{
    battle::{BattleStatus, BattleView, FrameView},
    events::DomainEvent,
    ids::is_valid_id,
    read_model::{
        CityView, GeneralView, Key, NationView, Rank, RankBy, RulesView, WorldSummary, ranks,
    },
};
use imbl::OrdMap;
use metrics::counter;
use serde::Deserialize;

use super::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{ApiPath, ApiQuery},
    published,
};

/// How a read of a list of the read models fails (for the OpenAPI document; the handlers
/// answer [`ApiError`]).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum ListFailures {
    #[response(
        status = 400,
        description = "a query parameter that is not accepted (`invalid_field`)"
    )]
    InvalidField(ErrorBody),
    #[response(
        status = 503,
        description = "the world is not loaded yet (`unavailable`)"
    )]
    NotLoaded(ErrorBody),
}

/// How a read of one entity's read model fails (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum EntityFailures {
    #[response(
        status = 400,
        description = "a query parameter or an id that is not accepted (`invalid_field`)"
    )]
    InvalidField(ErrorBody),
    #[response(status = 404, description = "nothing has that id (`not_found`)")]
    NotFound(ErrorBody),
    #[response(
        status = 503,
        description = "the world is not loaded yet (`unavailable`)"
    )]
    NotLoaded(ErrorBody),
}

/// Most events one `GET /api/events` returns.
pub const MAX_EVENTS_LIMIT: usize = 1_000;
/// Events returned when `limit` is not given.
pub const DEFAULT_EVENTS_LIMIT: usize = 100;

/// Counts a read from the in-process read models (L1, docs/operations.md#metrics
/// `tianxia_cache_requests_total`): a hit when they held what it asked for.
pub(crate) fn l1<T>(read: Result<T, ApiError>) -> Result<T, ApiError> {
    count_l1(read.is_ok());
    read
}

pub(crate) fn count_l1(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    counter!("tianxia_cache_requests_total", "layer" => "l1", "result" => result).increment(1);
}

fn find<T>(map: &OrdMap<Key, Arc<T>>, kind: &str, id: &str) -> Result<Arc<T>, ApiError> {
    map.get(id).cloned().ok_or_else(|| {
        if is_valid_id(id) {
            ApiError::not_found(format!("no {kind} with id \"{id}\""))
        } else {
            ApiError::not_found(format!(
                "no {kind} with that id: ids are 1-48 characters of [a-z0-9_-]"
            ))
        }
    })
}

/// Checks an id given as a filter.
fn filter_id(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(id) if !is_valid_id(&id) => Err(ApiError::invalid_field(format!(
            "{field}: \"{id}\" is not an id (1-48 characters of [a-z0-9_-])"
        ))),
        other => Ok(other),
    }
}

/// A route that takes no query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

#[utoipa::path(
    get,
    path = "/api/world",
    tag = "world",
    responses(
        (status = 200, description = "the world summary", body = WorldSummary),
        ListFailures,
    ),
)]
pub async fn world(
    State(state): State<AppState>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<WorldSummary>>, ApiError> {
    l1(published(&state).map(|m| Json(m.world.clone())))
}

#[utoipa::path(
    get,
    path = "/api/rules",
    tag = "world",
    responses(
        (status = 200, description = "the rules in force: command costs, durations and authority, position cards, troop types and balance constants", body = RulesView),
        ListFailures,
    ),
)]
pub async fn rules(
    State(state): State<AppState>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<RulesView>>, ApiError> {
    let models = l1(published(&state))?;
    if models.rules.data_hash.is_empty() {
        return Err(ApiError::unavailable("the rules are not published yet"));
    }
    Ok(Json(models.rules.clone()))
}

#[utoipa::path(
    get,
    path = "/api/nations",
    tag = "world",
    responses(
        (status = 200, description = "every nation, by id", body = Vec<NationView>),
        ListFailures,
    ),
)]
pub async fn nations(
    State(state): State<AppState>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Vec<Arc<NationView>>>, ApiError> {
    l1(published(&state).map(|m| Json(m.nations.values().cloned().collect())))
}

#[utoipa::path(
    get,
    path = "/api/nations/{id}",
    tag = "world",
    params(("id" = String, Path, description = "the entity's id", pattern = "^[a-z0-9_-]{1,48}$")),
    responses(
        (status = 200, description = "one nation", body = NationView),
        EntityFailures,
    ),
)]
pub async fn nation(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<NationView>>, ApiError> {
    l1(published(&state).and_then(|m| find(&m.nations, "nation", &id))).map(Json)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CityFilter {
    /// Only the cities of this nation.
    #[param(pattern = "^[a-z0-9_-]{1,48}$")]
    nation: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/cities",
    tag = "world",
    params(CityFilter),
    responses(
        (status = 200, description = "cities, by id", body = Vec<CityView>),
        ListFailures,
    ),
)]
pub async fn cities(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<CityFilter>,
) -> Result<Json<Vec<Arc<CityView>>>, ApiError> {
    let nation = filter_id("nation", filter.nation)?;
    let models = l1(published(&state))?;
    let cities = models
        .cities
        .values()
        .filter(|c| nation.as_ref().is_none_or(|n| c.nation.as_ref() == Some(n)))
        .cloned()
        .collect();
    Ok(Json(cities))
}

#[utoipa::path(
    get,
    path = "/api/cities/{id}",
    tag = "world",
    params(("id" = String, Path, description = "the entity's id", pattern = "^[a-z0-9_-]{1,48}$")),
    responses(
        (status = 200, description = "one city", body = CityView),
        EntityFailures,
    ),
)]
pub async fn city(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<CityView>>, ApiError> {
    l1(published(&state).and_then(|m| find(&m.cities, "city", &id))).map(Json)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GeneralFilter {
    /// Only the generals of this nation.
    #[param(pattern = "^[a-z0-9_-]{1,48}$")]
    nation: Option<String>,
    /// Only the generals in this city.
    #[param(pattern = "^[a-z0-9_-]{1,48}$")]
    city: Option<String>,
    /// Only generals whose id sorts after this one: the next page, as the `Link` header of
    /// the previous one names it.
    #[param(pattern = "^[a-z0-9_-]{1,48}$")]
    after: Option<String>,
    /// At most this many generals (1–1000, default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Generals one page of `GET /api/generals` holds by default, and at most.
pub const MAX_GENERALS_PAGE: usize = 1_000;

#[utoipa::path(
    get,
    path = "/api/generals",
    tag = "world",
    params(GeneralFilter),
    responses(
        (status = 200, description = "generals, by id, a page at a time", body = Vec<GeneralView>,
            headers(("link" = String, description = "`<URL>; rel=\"next\"` while more generals match: the URL of the next page"))),
        ListFailures,
    ),
)]
pub async fn generals(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<GeneralFilter>,
) -> Result<Response, ApiError> {
    let nation = filter_id("nation", filter.nation)?;
    let city = filter_id("city", filter.city)?;
    let after = filter_id("after", filter.after)?;
    let limit = page_limit(filter.limit)?;
    let models = l1(published(&state))?;
    let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let mut matching = models
        .generals
        .range::<_, str>((from, Bound::Unbounded))
        .map(|(_, g)| g)
        .filter(|g| nation.as_ref().is_none_or(|n| g.nation.as_ref() == Some(n)))
        .filter(|g| city.as_ref().is_none_or(|c| &g.city == c));
    let page: Vec<Arc<GeneralView>> = matching.by_ref().take(limit).cloned().collect();
    let headers = next_page(
        "/api/generals",
        limit,
        matching
            .next()
            .is_some()
            .then(|| page.last().map(|g| g.id.as_str()))
            .flatten(),
        &[("nation", nation.as_deref()), ("city", city.as_deref())],
    );
    Ok((headers, Json(page)).into_response())
}

/// A page's `limit`: 1–[`MAX_GENERALS_PAGE`], that by default.
fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(MAX_GENERALS_PAGE);
    if !(1..=MAX_GENERALS_PAGE).contains(&limit) {
        return Err(ApiError::invalid_field(format!(
            "limit: {limit} is outside 1–{MAX_GENERALS_PAGE}"
        )));
    }
    Ok(limit)
}

/// The `Link: <...>; rel="next"` header of a page of `path` that has more after `last`,
/// keeping the filters.
fn next_page(
    path: &str,
    limit: usize,
    last: Option<&str>,
    filters: &[(&str, Option<&str>)],
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(last) = last {
        let mut next = format!("{path}?limit={limit}&after={last}");
        for (name, value) in filters {
            if let Some(value) = value {
                next.push_str(&format!("&{name}={value}"));
            }
        }
        if let Ok(value) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            headers.insert(header::LINK, value);
        }
    }
    headers
}

#[utoipa::path(
    get,
    path = "/api/generals/{id}",
    tag = "world",
    params(("id" = String, Path, description = "the entity's id", pattern = "^[a-z0-9_-]{1,48}$")),
    responses(
        (status = 200, description = "one general", body = GeneralView),
        EntityFailures,
    ),
)]
pub async fn general(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<GeneralView>>, ApiError> {
    l1(published(&state).and_then(|m| find(&m.generals, "general", &id))).map(Json)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events with a greater `seq` (default 0).
    #[param(minimum = 0)]
    after_seq: Option<i64>,
    /// At most this many events (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Only the events of this aggregate, as `kind:id`.
    #[param(pattern = "^[a-z0-9_-]{1,48}:[a-z0-9_-]{1,48}$")]
    aggregate: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/events",
    tag = "world",
    params(EventsQuery),
    responses(
        (status = 200, description = "durable domain events in sequence order", body = Vec<DomainEvent>),
        (status = 400, description = "a query parameter or path parameter that is not accepted (`invalid_field`)", body = ErrorBody),
        (status = 503, description = "the store cannot be read (`unavailable`)", body = ErrorBody),
    ),
)]
pub async fn events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<Vec<DomainEvent>>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_EVENTS_LIMIT);
    if !(1..=MAX_EVENTS_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(format!(
            "limit: {limit} is outside 1–{MAX_EVENTS_LIMIT}"
        )));
    }
    if let Some(aggregate) = &query.aggregate {
        let valid = aggregate
            .split_once(':')
            .is_some_and(|(kind, id)| is_valid_id(kind) && is_valid_id(id));
        if !valid {
            return Err(ApiError::invalid_field(format!(
                "aggregate: \"{aggregate}\" is not of the form kind:id"
            )));
        }
    }
    let after_seq = u64::try_from(query.after_seq.unwrap_or(0))
        .map_err(|_| ApiError::invalid_field("after_seq: a sequence number is 0 or more"))?;
    let events = state
        .events
        .events(after_seq, limit, query.aggregate.as_deref())
        .await
        .map_err(|e| ApiError::unavailable(format!("the event log cannot be read: {e}")))?;
    Ok(Json(events))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BattleFilter {
    status: Option<BattleStatus>,
    /// Only battles whose id sorts after this one: the next page, as the `Link` header of the
    /// previous one names it.
    #[param(pattern = "^[a-z0-9_-]{1,48}$")]
    after: Option<String>,
    /// At most this many battles (1–1000, default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/battles",
    tag = "world",
    params(BattleFilter),
    responses(
        (status = 200, description = "battles under way and recently finished", body = Vec<BattleView>),
        ListFailures,
    ),
)]
pub async fn battles(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<BattleFilter>,
) -> Result<Response, ApiError> {
    let after = filter_id("after", filter.after)?;
    let limit = page_limit(filter.limit)?;
    let models = l1(published(&state))?;
    let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let mut matching = models
        .battles
        .range::<_, str>((from, Bound::Unbounded))
        .map(|(_, b)| b)
        .filter(|b| filter.status.is_none_or(|s| b.status == s));
    let page: Vec<Arc<BattleView>> = matching.by_ref().take(limit).cloned().collect();
    let status = filter.status.map(|s| match s {
        BattleStatus::Active => "active",
        BattleStatus::Finished => "finished",
    });
    let headers = next_page(
        "/api/battles",
        limit,
        matching
            .next()
            .is_some()
            .then(|| page.last().map(|b| b.id.as_str()))
            .flatten(),
        &[("status", status)],
    );
    Ok((headers, Json(page)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/battles/{id}",
    tag = "world",
    params(("id" = String, Path, description = "the entity's id", pattern = "^[a-z0-9_-]{1,48}$")),
    responses(
        (status = 200, description = "one battle", body = BattleView),
        EntityFailures,
    ),
)]
pub async fn battle(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<BattleView>>, ApiError> {
    l1(published(&state).and_then(|m| find(&m.battles, "battle", &id))).map(Json)
}

#[utoipa::path(
    get,
    path = "/api/battles/{id}/frame",
    tag = "world",
    params(("id" = String, Path, description = "the entity's id", pattern = "^[a-z0-9_-]{1,48}$")),
    responses(
        (status = 200, description = "the battle's latest frame", body = FrameView),
        EntityFailures,
    ),
)]
pub async fn frame(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<FrameView>>, ApiError> {
    let models = l1(published(&state))?;
    if let Some(frame) = models.frames.get(id.as_str()) {
        return Ok(Json(frame.clone()));
    }
    l1(match models.battles.get(id.as_str()) {
        Some(_) => Err(ApiError::not_found(format!(
            "battle \"{id}\" has ended: frames are kept only while a battle is under way"
        ))),
        None => Err(ApiError::not_found(format!("no battle with id \"{id}\""))),
    })
}

/// `GET /api/battles/{id}/recording`: the battle as `tianxia battle run` replays it.
#[utoipa::path(
    get,
    path = "/api/battles/{id}/recording",
    tag = "world",
    params(("id" = String, Path, description = "the entity's id", pattern = "^[a-z0-9_-]{1,48}$")),
    responses(
        (status = 200, description = "the recording of a battle: its setup, the data hash it was fought under, its steps, outcome and state hash; `tianxia battle run FILE` replays it to the same hash. A battle under way is recorded as it stood at its latest recorded step (once per battle second, `outcome` null); a finished one as it ended, kept with the last `battles_kept` finished battles", content_type = "application/json", body = Object),
        EntityFailures,
    ),
)]
pub async fn recording(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    _: ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    let models = l1(published(&state))?;
    if let Some(recording) = models.recordings.get(id.as_str()) {
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            recording.to_string(),
        )
            .into_response());
    }
    l1(match models.battles.get(id.as_str()) {
        Some(view) if view.status == BattleStatus::Active => Err(ApiError::not_found(format!(
            "battle \"{id}\" is under way and not recorded yet: try again in a moment"
        ))),
        Some(_) => Err(ApiError::not_found(format!(
            "battle \"{id}\" has no recording here (recordings are kept by the process that runs the World)"
        ))),
        None => Err(ApiError::not_found(format!("no battle with id \"{id}\""))),
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardQuery {
    #[serde(default)]
    by: RankBy,
}

/// `GET /api/leaderboard?by=cities|troops|gold`: active nations ranked.
#[utoipa::path(
    get,
    path = "/api/leaderboard",
    tag = "world",
    params(LeaderboardQuery),
    responses(
        (status = 200, description = "active nations ranked", body = Vec<Rank>),
        ListFailures,
    ),
)]
pub async fn leaderboard(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<LeaderboardQuery>,
) -> Result<Json<Vec<Rank>>, ApiError> {
    let models = published(&state)?;
    Ok(Json(ranks(&models, query.by)))
}
