/**
 * Where RedisTier keeps things in Redis, under one prefix per front door ("portico:reverse:"):
 *
 *   <prefix>r:<entry key>   a variant's record (record-codec.ts)
 *   <prefix>u:<url>         the set of a URL's variants
 *   <prefix>t:<tag>         the set of the variants carrying a tag
 *   <prefix>l:<entry key>   the lock of a fill in progress (redis-fills.ts)
 *   <prefix>purge           the channel purges are announced on (redis-purges.ts)
 *   <prefix>fill            the channel fill leaders announce their release on
 *   <prefix>ack:<instance>  each instance's channel for acknowledgements of its purges
 */
import { randomBytes } from 'node:crypto';

export class RedisKeys {
  /** This process's tier, among every instance sharing the prefix. */
  readonly instance = randomBytes(6).toString('hex');
  readonly recordPrefix: string;
  readonly urlPrefix: string;
  readonly tagPrefix: string;
  readonly purgeChannel: string;
  readonly fillChannel: string;
  readonly ackChannel: string;
  private readonly lockPrefix: string;
  private readonly ackPrefix: string;

  constructor(prefix: string) {
    this.recordPrefix = `${prefix}r:`;
    this.urlPrefix = `${prefix}u:`;
    this.tagPrefix = `${prefix}t:`;
    this.lockPrefix = `${prefix}l:`;
    this.purgeChannel = `${prefix}purge`;
    this.fillChannel = `${prefix}fill`;
    this.ackPrefix = `${prefix}ack:`;
    this.ackChannel = this.ackPrefix + this.instance;
  }

  record(entryKey: string): string {
    return this.recordPrefix + entryKey;
  }

  url(url: string): string {
    return this.urlPrefix + url;
  }

  tag(tag: string): string {
    return this.tagPrefix + tag;
  }

  lock(entryKey: string): string {
    return this.lockPrefix + entryKey;
  }

  /** The channel on which `instance` takes acknowledgements of its purges. */
  ackChannelOf(instance: string): string {
    return this.ackPrefix + instance;
  }
}
