"""The portfolio book kept in Redis (the fleet's, a Lua script per entry point) and in memory."""
