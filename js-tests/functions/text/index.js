// Returns a plain string, which the caller gets back as a string.
exports.main = async (event) => `hello, ${event.name ?? 'world'}`;
