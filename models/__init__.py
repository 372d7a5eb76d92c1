"""Pure numerical models: anomaly detection, peer comparison, forecasting, health scoring."""
