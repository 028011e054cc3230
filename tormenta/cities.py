"""The cities the platform serves (pure data, importable by a kind's contract without a cycle):
city -> (lat_min, lat_max, lon_min, lon_max). ``tormenta.reference`` seeds zones and devices from it."""

CITIES: dict[str, tuple[float, float, float, float]] = {
    "madrid": (40.30, 40.56, -3.85, -3.52),
    "bogota": (4.47, 4.84, -74.22, -73.99),
}
