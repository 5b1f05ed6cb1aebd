"""What a trained model produces: text sampled a character at a time, multi-step forecasts."""
