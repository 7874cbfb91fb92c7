"""Rule-based strategies: indicators (TA-Lib), rules, the evaluator and the backtester."""
