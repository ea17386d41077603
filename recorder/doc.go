// Package recorder runs recordings: the Manager owns every recording of this
// process, each a Session with its state machine (INITIALISED → ACTIVE →
// STOPPED, FAILED, ABORTED), its media graph and its finishing steps, and the
// store that keeps them across restarts.
//
// A recording goes through these stages (the longer stories open their
// files):
//
//   - start (start.go): a request is validated, stored and joined to its
//     conference's room;
//   - media (room.go, media.go, session.go): every track of the room fans out
//     to the recordings that take it, each writing the track's file and
//     feeding its mixer input; a write error fails the recording;
//   - the gate (pause.go: pause and blackout; retro.go): one gate per track drops
//     what a pause or a blackout cuts, the same instant for the file and the
//     mix;
//   - parts while recording (chunks.go): growing files reach storage in
//     whole-unit parts every uploads.chunkInterval;
//   - stop (stop.go): Session.finish, top to bottom: close the files and the
//     mix, judge the final state, compose and upload, persist;
//   - uploads (uploads.go): every object goes through the persisted queue; a
//     late success makes an upload_failed recording STOPPED;
//   - after the stop: the composite video (composite.go), recovery of what a
//     crash left (recover.go), a dead instance's recordings taken over
//     (takeover.go), the graceful drain (drain.go).
//
// The configuration is package config; the engine takes a config.Config and
// does not read the file. Ids follow recorder/ids.
package recorder
