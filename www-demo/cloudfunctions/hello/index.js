// The demo's cloud function: greets whoever the page names.
exports.main = async (event, context) => {
  const name = typeof event.name === 'string' && event.name.trim() ? event.name.trim() : 'world';
  return {
    message: `Hello, ${name}!`,
    openId: event.userInfo && event.userInfo.openId,
    env: context.namespace,
    at: new Date().toISOString(),
  };
};
