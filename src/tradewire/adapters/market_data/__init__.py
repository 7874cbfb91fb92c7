"""Sources of market data behind the BarSource port: the database, a CSV folder, CCXT, Alpaca."""
