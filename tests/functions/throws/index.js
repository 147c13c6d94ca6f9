// Fails with a message the caller must see (with the stack) in errMsg.
exports.main = async (event) => {
  throw new Error(`boom: ${event.tag}`);
};
