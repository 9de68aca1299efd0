"""Reports: the KPI definitions (`model`, pure), their SQL (`store`), the endpoints (`http`)."""
