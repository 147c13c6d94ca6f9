// Returns a value JSON cannot encode (a BigInt).
exports.main = async () => ({ n: 10n });
