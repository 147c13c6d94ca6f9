// The app's cloud function: adds two numbers and says who called it in which env (wx-server-sdk's context).
const cloud = require('wx-server-sdk');

cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });

exports.main = async (event) => {
  const { OPENID, ENV } = cloud.getWXContext();
  return { sum: Number(event.a) + Number(event.b), openid: OPENID, env: ENV };
};
