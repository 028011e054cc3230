"""Mobile-geolocation business rules as Spark SQL (the model they follow: ``tormenta/geo.py``).

:func:`mutations` runs the rules as window functions over each device's positions (the state "as
of before this batch" comes from HBase in JVM-side batched gets).
"""

from __future__ import annotations

from tormenta.geo import EARTH_RADIUS_M, Zone

STATE_SCHEMA = "event_time bigint, lat double, lon double, trip_id string, zone string"


def zone_sql(zones: list[Zone]) -> str:
    """SQL: the zone of (lat, lon), the first zone by id that contains it, else '' (``tormenta.geo.zone_of``)."""
    from spark_jobs.validation import sql_str

    whens = " ".join(
        f"WHEN lat BETWEEN {z.lat_min!r}D AND {z.lat_max!r}D AND lon BETWEEN {z.lon_min!r}D AND {z.lon_max!r}D "
        f"THEN {sql_str(z.zone_id)}"
        for z in sorted(zones, key=lambda z: z.zone_id)
    )
    return f"CASE {whens} ELSE '' END" if whens else "''"


def haversine_sql(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    """SQL: ``tormenta.geo.haversine_m``."""
    a = (f"pow(sin((radians({lat2}) - radians({lat1})) / 2), 2) + cos(radians({lat1})) * cos(radians({lat2})) "
         f"* pow(sin(radians({lon2} - {lon1}) / 2), 2)")  # fmt: skip
    return f"2 * {EARTH_RADIUS_M!r}D * asin(least(1.0D, sqrt({a})))"


def latest_mutation(ctx, zone: str = "zone") -> str:
    """SQL: the latest position of a device, in ``zone`` (SQL). Cell timestamp = event time and
    one version kept: the newest position wins whatever order the writes land in."""
    from spark_jobs.context import mutation, text
    from spark_jobs.validation import key_part_sql, sql_str

    # The cells in this order: the order is part of the analyzed plan, which a checkpoint keeps.
    cells = {f"d:{n}": text(zone if n == "zone" else n)
             for n in ("lat", "lon", "speed_kmh", "zone", "trip_id", "event_time", "event_id")}  # fmt: skip
    return mutation(ctx.t("geo_latest"), key_part_sql("device_id"), "event_time",
                    {**cells, "d:batch": text(sql_str(ctx.label))})  # fmt: skip


def realtime_mutations(ctx, refs) -> list[str]:
    """The stateless part of the rules, for Spark's real-time mode (no shuffle, no state, no
    lookup), as mutations (SQL) of each good position as it arrives: its device's latest
    position, with its zone. ``KIND.realtime`` says what it writes."""
    return [latest_mutation(ctx, zone_sql(refs.zones))]


def mutations(events, ctx, refs):
    """The new positions of a batch -> HBase mutations: positions with zone, computed speed and
    driver/vehicle/city; the latest position per device; zone enter/leave events; this batch's
    contribution to each trip; the new device state. Retry: idempotent (the state is read as of
    before this batch, every cell timestamp is the event's or ``seq + 1``). ``refs``: the batch's
    reference cache (``tormenta.reference.ReferenceCache``), for its zones."""
    from pyspark.sql import functions as F

    from spark_jobs import jvm_sink
    from spark_jobs.context import envelope_cells, mutation, mutations, text
    from spark_jobs.validation import event_row_key_sql, key_part_sql, row_key_sql, sql_str

    from .contract import KIND

    w = "OVER (PARTITION BY device_id ORDER BY event_time, event_id)"
    # One shuffle by device; the state "as of before this batch" is then read only for each
    # device's first position, and the reference row (cached per executor) for every position.
    track = events.selectExpr("*", f"{zone_sql(refs.zones)} AS zone").selectExpr(
        "*", f"row_number() {w} = 1 AS _first",
        f"lag(lat) {w} AS _lag_lat", f"lag(lon) {w} AS _lag_lon", f"lag(event_time) {w} AS _lag_time",
        f"lag(trip_id) {w} AS _lag_trip", f"lag(zone) {w} AS _lag_zone",
        "row_number() OVER (PARTITION BY device_id ORDER BY event_time DESC, event_id DESC) = 1 AS _newest",
        f"{sql_str(ctx.t('geo_state'))} AS _state_table", f"{sql_str(ctx.t('ref_devices'))} AS _ref_table",
    )  # fmt: skip
    track = track.withColumn("_state_key", F.expr("CASE WHEN _first THEN device_id END"))
    track = jvm_sink.lookup(track, "_state_table", "_state_key", {"_state": "s:last"}, ctx.settings,
                            before_ts=ctx.ts, cache_seconds=300)  # fmt: skip
    track = jvm_sink.lookup(track, "_ref_table", "device_id",
                            {"driver": "d:driver", "vehicle": "d:vehicle", "city": "d:city"}, ctx.settings,
                            cache_seconds=60)  # fmt: skip
    track = track.withColumn("_s", F.from_json("_state", STATE_SCHEMA)).selectExpr(
        "*", "CASE WHEN _first THEN _s.lat ELSE _lag_lat END AS _prev_lat",
        "CASE WHEN _first THEN _s.lon ELSE _lag_lon END AS _prev_lon",
        "CASE WHEN _first THEN _s.event_time ELSE _lag_time END AS _prev_time",
        "CASE WHEN _first THEN _s.trip_id ELSE _lag_trip END AS _prev_trip",
        "coalesce(CASE WHEN _first THEN _s.zone ELSE _lag_zone END, '') AS from_zone",
    ).selectExpr(
        "*", f"CASE WHEN _prev_trip = trip_id THEN {haversine_sql('_prev_lat', '_prev_lon', 'lat', 'lon')} END AS _dist",
        "(event_time - _prev_time) / 1000 AS _dt_s",
    ).selectExpr(
        "*", "coalesce(_dist, 0.0D) AS distance_m",
        "CASE WHEN _dist IS NOT NULL AND _dt_s > 0 THEN _dist / _dt_s * 3.6D END AS computed_speed_kmh",
    )  # fmt: skip

    label = sql_str(ctx.label)
    cells = envelope_cells(ctx)
    for name in ("device_id", "trip_id", "lat", "lon", "speed_kmh", "zone"):
        cells[f"d:{name}"] = text(name)
    cells.update({
        "d:computed_speed_kmh": text("coalesce(cast(round(computed_speed_kmh, 3) AS string), '')"),
        "d:driver": text("coalesce(driver, '')"), "d:vehicle": text("coalesce(vehicle, '')"),
        "d:city": text("coalesce(city, '')"),
    })  # fmt: skip
    position = mutation(ctx.t(KIND.events_table), event_row_key_sql(), ctx.ts, cells, metric="'good'",
                        event_time="event_time")  # fmt: skip
    latest = latest_mutation(ctx)
    state = "to_json(named_struct('event_time', event_time, 'lat', lat, 'lon', lon, 'trip_id', trip_id, 'zone', zone))"
    new_state = mutation(ctx.t("geo_state"), key_part_sql("device_id"), ctx.ts, {"s:last": text(state)})
    zone_event = mutation(
        ctx.t("geo_zone_events"), row_key_sql("device_id", "lpad(cast(event_time AS string), 13, '0')", "event_id"),
        "event_time", {"d:from_zone": text("from_zone"), "d:to_zone": text("zone"), "d:event_time": text("event_time"),
                       "d:batch": text(label)},
    )  # fmt: skip
    # Every position's outputs in one pass over the track: the position, and for the device's
    # newest its latest row and new state, and a zone event where the zone changed.
    per_position = mutations(track, position, ("_newest", latest), ("_newest", new_state),
                             ("from_zone != zone", zone_event))  # fmt: skip

    # Distances summed as decimals: exact, whatever order partial sums meet in (byte-identical replays).
    per_trip = track.groupBy("trip_id").agg(
        F.expr("sum(cast(distance_m AS decimal(24,9))) AS distance_m"), F.expr("max(speed_kmh) AS max_speed_kmh"),
        F.expr("count(*) AS points"),
    )  # fmt: skip
    doc = ("to_json(named_struct('distance_m', round(cast(distance_m AS double), 6), "
           "'max_speed_kmh', round(max_speed_kmh, 6), 'points', points))")  # fmt: skip
    trips = mutations(per_trip, mutation(ctx.t("geo_trips"), key_part_sql("trip_id"), ctx.ts,
                                         {ctx.contribution_column: text(doc)}))  # fmt: skip
    return [per_position, trips]
