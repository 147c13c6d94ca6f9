// Returns nothing: the caller gets null.
exports.main = async () => {};
