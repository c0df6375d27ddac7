//! [`Store`] for the two views of the PostgreSQL store ([`PgStore`], whose writes each take a
//! transaction, and [`Atomic`], an atomic unit's): each operation is written once, in the
//! file of its table group; a macro writes the trait's delegation for both types.

use pushauth_proto::wire::AuditEvent;

use super::db::{Atomic, Db, PgStore};
use super::{
    audit, backup_codes, challenges, counts, devices, enrollments, grace, limits, notices, offline,
    push_subscriptions, relying_parties, retention, site_keys,
};
use crate::clock::Millis;
use crate::limits::{PushState, Refusal};
use crate::store::{
    AnswerRecord, AuditEntry, BackupCodeFacts, Cas, ChallengeRecord, CountStore, Create,
    DeviceChallenges, DeviceRecord, EnrollFacts, EnrollmentRecord, GraceFind, GraceLogin,
    NewChallenge, NewDevice, NewRpEnrollment, NonceRefused, NoticeRecord, OfflineAdvance,
    OfflineSecretRecord, OfflineStore, Pruned, PushCheck, PushSubscriptionRecord, Redeem,
    RelyingPartyRecord, RequestNonce, SiteKeyStore, Spent, Store, StoreResult, StoredCode, Swept,
    UseCode,
};

macro_rules! pg_store {
    ($t:ty) => {
        impl Store for $t {
            fn group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
                self.run_group(work)
            }

            fn atomic(
                &self,
                work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>,
            ) -> StoreResult<()> {
                self.run_atomic(work)
            }

            fn health(&self, commit: bool) -> StoreResult<()> {
                retention::health(self, commit)
            }

            fn create_enrollment(
                &self,
                user: &str,
                token_hash: &[u8; 32],
                now: Millis,
                expires_at: Millis,
            ) -> StoreResult<()> {
                enrollments::create_enrollment(self, user, token_hash, now, expires_at)
            }

            fn get_enrollment(
                &self,
                token_hash: &[u8; 32],
            ) -> StoreResult<Option<EnrollmentRecord>> {
                enrollments::get_enrollment(self, token_hash)
            }

            fn enroll_facts(&self, user: &str, approval: Option<&str>) -> StoreResult<EnrollFacts> {
                enrollments::enroll_facts(self, user, approval)
            }

            fn create_rp_enrollment(
                &self,
                new: &NewRpEnrollment,
                approved_by: Option<&str>,
            ) -> StoreResult<()> {
                enrollments::create_rp_enrollment(self, new, approved_by)
            }

            fn redeem_enrollment(
                &self,
                token_hash: &[u8; 32],
                device: &NewDevice,
                source: Option<&str>,
                now: Millis,
            ) -> StoreResult<Redeem> {
                enrollments::redeem_enrollment(self, token_hash, device, source, now)
            }

            fn user_devices(&self, user: &str) -> StoreResult<Option<Vec<DeviceRecord>>> {
                devices::user_devices(self, user)
            }

            fn get_device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
                devices::get_device(self, id)
            }

            fn device_key(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
                devices::device_key(self, id)
            }

            fn answer_spending(
                &self,
                nonce: &RequestNonce,
                id: &str,
                answer: &AnswerRecord,
                now: Millis,
            ) -> StoreResult<Result<Cas, NonceRefused>> {
                challenges::answer_spending(self, nonce, id, answer, now)
            }

            fn acknowledge_spending(
                &self,
                nonce: &RequestNonce,
                id: &str,
                now: Millis,
            ) -> StoreResult<Result<Cas, NonceRefused>> {
                challenges::acknowledge_spending(self, nonce, id, now)
            }

            fn device_challenges_spending(
                &self,
                nonce: &RequestNonce,
                now: Millis,
            ) -> StoreResult<Result<DeviceChallenges, NonceRefused>> {
                challenges::device_challenges_spending(self, nonce, now)
            }

            fn spend_device_nonce(
                &self,
                device_id: &str,
                nonce: &str,
                now: Millis,
                valid_until: Millis,
            ) -> StoreResult<Spent> {
                devices::spend_device_nonce(self, device_id, nonce, now, valid_until)
            }

            fn revoke_device(
                &self,
                id: &str,
                actor: &str,
                now: Millis,
            ) -> StoreResult<Option<DeviceRecord>> {
                devices::revoke_device(self, id, actor, now)
            }

            fn create_relying_party(
                &self,
                rp: &RelyingPartyRecord,
                now: Millis,
            ) -> StoreResult<()> {
                relying_parties::create_relying_party(self, rp, now)
            }

            fn get_relying_party(&self, id: &str) -> StoreResult<Option<RelyingPartyRecord>> {
                relying_parties::get_relying_party(self, id)
            }

            fn list_relying_parties(&self) -> StoreResult<Vec<RelyingPartyRecord>> {
                relying_parties::list_relying_parties(self)
            }

            fn revoke_relying_party(
                &self,
                id: &str,
                now: Millis,
            ) -> StoreResult<Option<RelyingPartyRecord>> {
                relying_parties::revoke_relying_party(self, id, now)
            }

            fn rotate_relying_party(
                &self,
                id: &str,
                key_hash: &[u8; 32],
                now: Millis,
            ) -> StoreResult<Option<RelyingPartyRecord>> {
                relying_parties::rotate_relying_party(self, id, key_hash, now)
            }

            fn kept_relying_party(&self, id: &str) -> Option<RelyingPartyRecord> {
                self.relying_parties().and_then(|cache| cache.get(id))
            }

            fn forget_relying_party(&self, id: &str) {
                if let Some(cache) = self.relying_parties() {
                    cache.changed(id);
                }
            }

            fn relying_party_change_spread(&self) -> std::time::Duration {
                // A little more, for the timers' granularity on a busy host.
                super::watched::KEPT_FOR + std::time::Duration::from_millis(50)
            }

            fn create_challenge(
                &self,
                new: &NewChallenge,
                check: PushCheck,
            ) -> StoreResult<Create> {
                challenges::create_challenge(self, new, check)
            }

            fn get_challenge(
                &self,
                id: &str,
                now: Millis,
            ) -> StoreResult<Option<(ChallengeRecord, bool)>> {
                challenges::get_challenge(self, id, now)
            }

            fn challenge_terms(
                &self,
                id: &str,
                now: Millis,
            ) -> StoreResult<Option<(ChallengeRecord, bool)>> {
                challenges::challenge_terms(self, id, now)
            }

            fn acknowledge(&self, id: &str, now: Millis) -> StoreResult<Cas> {
                challenges::acknowledge(self, id, now)
            }

            fn answer(&self, id: &str, answer: &AnswerRecord, now: Millis) -> StoreResult<Cas> {
                challenges::answer(self, id, answer, now)
            }

            fn cancel(&self, id: &str, rp_key: Option<&[u8; 32]>, now: Millis) -> StoreResult<Cas> {
                challenges::cancel(self, id, rp_key, now)
            }

            fn unlock_user(&self, user: &str, by: &str, now: Millis) -> StoreResult<bool> {
                limits::unlock_user(self, user, by, now)
            }

            fn device_challenges(
                &self,
                device_id: &str,
                now: Millis,
            ) -> StoreResult<DeviceChallenges> {
                challenges::device_challenges(self, device_id, now)
            }

            fn sweep(&self, now: Millis, max: usize) -> StoreResult<Swept> {
                retention::sweep(self, now, max)
            }

            fn prune(
                &self,
                challenges_before: Option<Millis>,
                audit_before: Option<Millis>,
                max: usize,
            ) -> StoreResult<Pruned> {
                retention::prune(self, challenges_before, audit_before, max)
            }

            fn open_challenges(&self, now: Millis) -> StoreResult<u64> {
                challenges::open_challenges(self, now)
            }

            fn audit(&self, entry: &AuditEntry, now: Millis) -> StoreResult<()> {
                audit::audit(self, entry, now)
            }

            fn audit_returning_id(&self, entry: &AuditEntry, now: Millis) -> StoreResult<i64> {
                audit::audit_returning_id(self, entry, now)
            }

            fn set_audit_count(&self, id: i64, count: u64) -> StoreResult<()> {
                audit::set_audit_count(self, id, count)
            }

            fn used_bytes(&self) -> StoreResult<u64> {
                retention::used_bytes(self)
            }

            fn list_audit(&self, limit: u32, user: Option<&str>) -> StoreResult<Vec<AuditEvent>> {
                audit::list_audit(self, limit, user)
            }

            fn set_push_subscription(
                &self,
                sub: &PushSubscriptionRecord,
                user: &str,
                detail: &str,
            ) -> StoreResult<bool> {
                push_subscriptions::set(self, sub, user, detail)
            }

            fn delete_push_subscription(
                &self,
                device_id: &str,
                endpoint: Option<&str>,
                detail: &str,
                now: Millis,
            ) -> StoreResult<bool> {
                push_subscriptions::delete(self, device_id, endpoint, detail, now)
            }

            fn push_subscriptions(
                &self,
                device_ids: &[String],
            ) -> StoreResult<Vec<PushSubscriptionRecord>> {
                push_subscriptions::of_devices(self, device_ids)
            }

            fn grace_login(
                &self,
                new: &NewChallenge,
                find: &GraceFind,
                check: &dyn Fn(&PushState) -> Result<(), Refusal>,
            ) -> StoreResult<Option<GraceLogin>> {
                grace::grace_login(self, new, find, check)
            }

            fn set_grace_key(&self, challenge_id: &str, key: &[u8; 32]) -> StoreResult<()> {
                grace::set_grace_key(self, challenge_id, key)
            }

            fn end_grace(
                &self,
                user: &str,
                by: &str,
                device_id: Option<&str>,
                now: Millis,
            ) -> StoreResult<bool> {
                grace::end_grace(self, user, by, device_id, now)
            }

            fn add_notice(&self, notice: &NoticeRecord, keep_since: Millis) -> StoreResult<()> {
                notices::add_notice(self, notice, keep_since)
            }

            fn user_notices(&self, user: &str, since: Millis) -> StoreResult<Vec<NoticeRecord>> {
                notices::user_notices(self, user, since)
            }

            fn backup_code_facts(&self, user: &str, tag: &str) -> StoreResult<BackupCodeFacts> {
                backup_codes::facts(self, user, tag)
            }

            fn replace_backup_codes(
                &self,
                user: &str,
                codes: &[StoredCode],
                now: Millis,
            ) -> StoreResult<bool> {
                backup_codes::replace(self, user, codes, now)
            }

            fn use_backup_code(
                &self,
                user: &str,
                used_hash: &str,
                replacement: &StoredCode,
                now: Millis,
            ) -> StoreResult<UseCode> {
                backup_codes::use_code(self, user, used_hash, replacement, now)
            }

            fn backup_code_failed(&self, user: &str) -> StoreResult<u32> {
                backup_codes::failed(self, user)
            }

            fn use_backup_approval(
                &self,
                challenge_id: &str,
                user: &str,
                now: Millis,
            ) -> StoreResult<bool> {
                backup_codes::use_approval(self, challenge_id, user, now)
            }
        }

        impl OfflineStore for $t {
            fn set_offline_secret(
                &self,
                record: &OfflineSecretRecord,
                now: Millis,
            ) -> StoreResult<()> {
                offline::set_secret(self, record, now)
            }

            fn offline_secrets(&self, user: &str) -> StoreResult<Vec<OfflineSecretRecord>> {
                offline::secrets(self, user)
            }

            fn advance_offline_counter(
                &self,
                device_id: &str,
                counter: u64,
            ) -> StoreResult<Option<OfflineAdvance>> {
                offline::advance(self, device_id, counter)
            }

            fn offline_served_to(&self, device_id: &str, counter: u64) -> StoreResult<()> {
                offline::served_to(self, device_id, counter)
            }

            fn any_offline_secret(&self) -> StoreResult<bool> {
                offline::any(self)
            }
        }

        impl CountStore for $t {
            fn claim_offline_batch(
                &self,
                challenge_id: &str,
                keep_until: Millis,
            ) -> StoreResult<bool> {
                counts::claim_batch(self, challenge_id, keep_until)
            }

            fn release_offline_batch(&self, challenge_id: &str) -> StoreResult<()> {
                counts::release_batch(self, challenge_id)
            }

            fn record_offline_report(
                &self,
                device_id: &str,
                rp_id: &str,
                counter: u64,
                now: Millis,
            ) -> StoreResult<bool> {
                counts::record_report(self, device_id, rp_id, counter, now)
            }

            fn count_offline_check(&self, device_id: &str, rp_id: &str) -> StoreResult<u64> {
                counts::count_check(self, device_id, rp_id)
            }

            fn uncount_offline_check(&self, device_id: &str, rp_id: &str) -> StoreResult<()> {
                counts::uncount_check(self, device_id, rp_id)
            }

            fn count_push_change(
                &self,
                device_id: &str,
                now: Millis,
                window_ms: Millis,
            ) -> StoreResult<u64> {
                counts::count_push_change(self, device_id, now, window_ms)
            }
        }

        impl SiteKeyStore for $t {
            fn pin_site_key(
                &self,
                name: &str,
                fingerprint: &str,
                now: Millis,
            ) -> StoreResult<String> {
                site_keys::pin(self, name, fingerprint, now)
            }
        }
    };
}

pg_store!(PgStore);
pg_store!(Atomic<'_>);
