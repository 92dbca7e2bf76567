//! Read routes (docs/http.md#world-state): the world summary, nations, cities, generals,
//! battles and the leaderboard, served from the last published snapshot; domain events from
//! the durable log.

use std::sync::Arc;

use axum::{Json, extract::State};
use components::{
    battle::{BattleStatus, BattleView, FrameView},
    events::DomainEvent,
    ids::is_valid_id,
    read_model::{CityView, GeneralView, Key, NationView, Rank, RankBy, WorldSummary, ranks},
};
use imbl::OrdMap;
use metrics::counter;
use serde::Deserialize;

use super::{
    AppState,
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    published,
};

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

pub async fn world(
    State(state): State<AppState>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<WorldSummary>>, ApiError> {
    l1(published(&state).map(|m| Json(m.world.clone())))
}

pub async fn nations(
    State(state): State<AppState>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Vec<Arc<NationView>>>, ApiError> {
    l1(published(&state).map(|m| Json(m.nations.values().cloned().collect())))
}

pub async fn nation(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<NationView>>, ApiError> {
    l1(published(&state).and_then(|m| find(&m.nations, "nation", &id))).map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CityFilter {
    nation: Option<String>,
}

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

pub async fn city(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<CityView>>, ApiError> {
    l1(published(&state).and_then(|m| find(&m.cities, "city", &id))).map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneralFilter {
    nation: Option<String>,
    city: Option<String>,
}

pub async fn generals(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<GeneralFilter>,
) -> Result<Json<Vec<Arc<GeneralView>>>, ApiError> {
    let nation = filter_id("nation", filter.nation)?;
    let city = filter_id("city", filter.city)?;
    let models = l1(published(&state))?;
    let generals = models
        .generals
        .values()
        .filter(|g| nation.as_ref().is_none_or(|n| g.nation.as_ref() == Some(n)))
        .filter(|g| city.as_ref().is_none_or(|c| &g.city == c))
        .cloned()
        .collect();
    Ok(Json(generals))
}

pub async fn general(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<GeneralView>>, ApiError> {
    l1(published(&state).and_then(|m| find(&m.generals, "general", &id))).map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    after_seq: Option<u64>,
    limit: Option<usize>,
    aggregate: Option<String>,
}

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
    let events = state
        .events
        .events(
            query.after_seq.unwrap_or(0),
            limit,
            query.aggregate.as_deref(),
        )
        .await
        .map_err(|e| ApiError::unavailable(format!("the event log cannot be read: {e}")))?;
    Ok(Json(events))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BattleFilter {
    status: Option<BattleStatus>,
}

pub async fn battles(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<BattleFilter>,
) -> Result<Json<Vec<Arc<BattleView>>>, ApiError> {
    let models = l1(published(&state))?;
    let battles = models
        .battles
        .values()
        .filter(|b| filter.status.is_none_or(|s| b.status == s))
        .cloned()
        .collect();
    Ok(Json(battles))
}

pub async fn battle(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    _: ApiQuery<NoQuery>,
) -> Result<Json<Arc<BattleView>>, ApiError> {
    l1(published(&state).and_then(|m| find(&m.battles, "battle", &id))).map(Json)
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardQuery {
    #[serde(default)]
    by: RankBy,
}

/// `GET /api/leaderboard?by=cities|troops|gold`: active nations ranked.
pub async fn leaderboard(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<LeaderboardQuery>,
) -> Result<Json<Vec<Rank>>, ApiError> {
    let models = published(&state)?;
    Ok(Json(ranks(&models, query.by)))
}
