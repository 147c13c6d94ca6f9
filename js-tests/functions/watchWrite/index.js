// Writes to a collection with wx-server-sdk (admin rights), for the watch suites: realtime watchers must see
// writes made inside cloud functions like any other.
const cloud = require('wx-server-sdk');

cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });

exports.main = async (event) => {
  const collection = cloud.database().collection(event.collection);
  switch (event.op) {
    case 'add':
      return (await collection.add({ data: event.data }))._id;
    case 'update':
      return (await collection.doc(event.id).update({ data: event.data })).stats.updated;
    case 'remove':
      return (await collection.doc(event.id).remove()).stats.removed;
    default:
      throw new Error(`unknown op ${event.op}`);
  }
};
