// The benchmark function: as little work as a function can do, so the numbers measure the call path.
exports.main = async (event) => ({ pong: event.n ?? 0 });
