// Rejects with an Error whose message and stack must reach the caller.
exports.main = async (event) => {
  throw new Error(`boom from throws: ${event.tag ?? 'no tag'}`);
};
